//! The `fourk` binary: parse arguments, run, exit with a documented code.

// A batch moves large short-lived buffers on many threads (a 4K answer is a 15 MB body and a
// 33 MB decoded frame). glibc's malloc raises its mmap threshold after the first such buffer is
// freed and from then on keeps freed space in per-thread arenas, so a long batch's peak memory
// crept up (3840x2160: 111 MB at 10 images, 148 MB at 150, 169 MB at 1,000). mimalloc gives
// large freed blocks back; scripts/batch-bench measures it.
//
// The `override` feature makes it the C libraries' malloc too (libwebp, libjpeg-turbo,
// SQLite). libwebp's encoder frees its 33 MB ARGB picture just before verification decodes
// the file; glibc gave that straight back to the kernel, so the decoder's frames were fresh
// zero-filled pages again, where mimalloc reuses what was freed. 4K PNG -> lossless WebP at
// effort 0: 0.84-0.93x `cwebp -lossless -z 0`, against 1.08-1.21x with glibc's malloc
// (system time 75-88 ms against 192-207).
//
// Its `no_thp` feature keeps it from asking for transparent huge pages (madvise), as glibc and
// the tools fourk is measured against do not. On a virtual machine whose balloon reports free
// memory to the host (common in CI and cloud sandboxes), a 2 MiB page taken from memory that
// another process just freed is zeroed by the host on first touch, which made fourk's runs slow
// exactly when they alternated with another tool's. Measured in turn with the anchors on such a
// machine (scripts/bench-pipeline's method, medians): `fourk upscale` 1440p -> 4K PNG 326 ms
// without huge pages against 446 ms with them (vips resize: 2699 ms); 4K PNG -> lossless WebP at
// effort 0 645 against 857 ms (cwebp -z 0: 602 ms); 4K PNG -> JPEG q90 the same (79.8 against
// 78.8 ms). Back to back, huge pages gained nothing measurable on these jobs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fourk::run(std::env::args_os())
}
