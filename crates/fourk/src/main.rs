//! The `fourk` binary: parse arguments, run, exit with a documented code.

// A batch moves large short-lived buffers on many threads (a 4K answer is a 15 MB body and a
// 33 MB decoded frame). glibc's malloc raises its mmap threshold after the first such buffer is
// freed and from then on keeps freed space in per-thread arenas, so a long batch's peak memory
// crept up (3840x2160: 111 MB at 10 images, 148 MB at 150, 169 MB at 1,000). mimalloc gives
// large freed blocks back; scripts/batch-bench measures it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fourk::run(std::env::args_os())
}
