//! Tiny ONNX models for tests, encoded by hand (protobuf wire format), so the tests need no
//! model download, no Python and no protobuf compiler, and the encoder is independent of the
//! runtime that parses it.
//!
//! Shared by `fourk-matte`'s unit tests and `fourk`'s CLI tests (`#[path]` includes).
#![allow(dead_code)]

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

fn int(out: &mut Vec<u8>, field: u32, v: i64) {
    key(out, field, 0);
    varint(out, v as u64);
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// `TensorProto` of floats: dims (1), data_type FLOAT=1 (2), float_data packed (4), name (8).
fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> Vec<u8> {
    let mut t = Vec::new();
    for &d in dims {
        int(&mut t, 1, d);
    }
    int(&mut t, 2, 1);
    let packed: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    bytes(&mut t, 4, &packed);
    bytes(&mut t, 8, name.as_bytes());
    t
}

/// A dimension: a number, or a symbol when `None`.
fn dim(d: Option<i64>, symbol: &str) -> Vec<u8> {
    let mut v = Vec::new();
    match d {
        Some(n) => int(&mut v, 1, n),
        None => bytes(&mut v, 2, symbol.as_bytes()),
    }
    v
}

/// `ValueInfoProto { name, type: TypeProto { tensor_type { elem_type: FLOAT, shape } } }`.
fn value_info(name: &str, shape: &[Option<i64>]) -> Vec<u8> {
    let mut shp = Vec::new();
    for (i, d) in shape.iter().enumerate() {
        bytes(&mut shp, 1, &dim(*d, ["N", "C", "H", "W"][i.min(3)]));
    }
    let mut tensor = Vec::new();
    int(&mut tensor, 1, 1);
    bytes(&mut tensor, 2, &shp);
    let mut ty = Vec::new();
    bytes(&mut ty, 1, &tensor);
    let mut vi = Vec::new();
    bytes(&mut vi, 1, name.as_bytes());
    bytes(&mut vi, 2, &ty);
    vi
}

fn node(op: &str, inputs: &[&str], output: &str) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        bytes(&mut n, 1, i.as_bytes());
    }
    bytes(&mut n, 2, output.as_bytes());
    bytes(&mut n, 3, format!("{op}_{output}").as_bytes());
    bytes(&mut n, 4, op.as_bytes());
    n
}

fn model(graph: &[u8]) -> Vec<u8> {
    let mut opset = Vec::new();
    bytes(&mut opset, 1, b"");
    int(&mut opset, 2, 13);
    let mut m = Vec::new();
    int(&mut m, 1, 7);
    bytes(&mut m, 2, b"fourk-tests");
    bytes(&mut m, 7, graph);
    bytes(&mut m, 8, &opset);
    m
}

/// `alpha = sigmoid(w·rgb + bias)` per pixel: a 1x1 Conv from 3 channels to 1, then a Sigmoid
/// when `sigmoid` (else the raw logits come out). Input `[1, 3, H, W]`, fixed when `hw` is
/// `Some`, symbolic `H` and `W` otherwise.
pub fn conv_model_with(weights: &[f32], bias: f32, hw: Option<(i64, i64)>, sigmoid: bool) -> Vec<u8> {
    let (h, w) = hw.map_or((None, None), |(h, w)| (Some(h), Some(w)));
    let mut g = Vec::new();
    let conv_out = if sigmoid { "logits" } else { "alpha" };
    bytes(&mut g, 1, &node("Conv", &["image", "weight", "bias"], conv_out));
    if sigmoid {
        bytes(&mut g, 1, &node("Sigmoid", &["logits"], "alpha"));
    }
    bytes(&mut g, 2, b"matte");
    bytes(&mut g, 5, &float_tensor("weight", &[1, 3, 1, 1], weights));
    bytes(&mut g, 5, &float_tensor("bias", &[1], &[bias]));
    bytes(&mut g, 11, &value_info("image", &[Some(1), Some(3), h, w]));
    bytes(&mut g, 12, &value_info("alpha", &[Some(1), Some(1), h, w]));
    model(&g)
}

/// [`conv_model_with`] with a fixed `h` x `w` input.
pub fn conv_model(weights: &[f32], bias: f32, h: i64, w: i64, sigmoid: bool) -> Vec<u8> {
    conv_model_with(weights, bias, Some((h, w)), sigmoid)
}

/// An Identity graph whose input has `shape`: for shape checks.
pub fn model_with_input(shape: &[i64]) -> Vec<u8> {
    let dims: Vec<Option<i64>> = shape.iter().map(|&d| Some(d)).collect();
    let mut g = Vec::new();
    bytes(&mut g, 1, &node("Identity", &["image"], "out"));
    bytes(&mut g, 2, b"identity");
    bytes(&mut g, 11, &value_info("image", &dims));
    bytes(&mut g, 12, &value_info("out", &dims));
    model(&g)
}
