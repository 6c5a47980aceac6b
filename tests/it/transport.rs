//! Transport (API.md §1, API.md §1): HTTP/1.1 keep-alive, chunked request bodies, and HTTP/2
//! cleartext by prior knowledge on the same port.

use crate::harness::http::{connect, send_on};
use crate::harness::*;
use serde_json::{json, Value};
use std::io::{Read, Write};

#[test]
fn http1_keep_alive_serves_several_requests_on_one_connection() {
    let s = Server::start();
    let mut conn = connect(s.addr);
    let json_ct = [("Content-Type", "application/json")];
    let r1 = send_on(&mut conn, s.addr, "PUT", "/v0/topics/t", &[], b"", false);
    assert_eq!(r1.status, 201, "{}", r1.text());
    let r2 = send_on(
        &mut conn,
        s.addr,
        "POST",
        "/v0/topics/t",
        &json_ct,
        br#"{"records":[{"data":1}]}"#,
        false,
    );
    assert_eq!(r2.status, 200, "{}", r2.text());
    // An error response does not end the connection either.
    let r3 = send_on(&mut conn, s.addr, "GET", "/v0/nope", &[], b"", false);
    assert_eq!(r3.status, 404);
    let r4 = send_on(
        &mut conn,
        s.addr,
        "POST",
        "/v0/topics/t/diff",
        &[],
        b"",
        true,
    );
    assert_eq!(seqs_of(&r4.expect(200)), vec![1]);
}

fn chunked(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn chunked_request_body_is_accepted() {
    let s = Server::start();
    let body = chunked(&[br#"{"records":[{"da"#, br#"ta":"chunked"}]}"#]);
    let headers = [
        ("Content-Type", "application/json"),
        ("Transfer-Encoding", "chunked"),
    ];
    let resp = s.req("POST", "/v0/topics/t", &headers, &body);
    assert_eq!(resp.expect(201)["seqs"], json!([1]));
    assert_eq!(s.diff("t", json!({}))["records"][0]["data"], "chunked");
}

#[test]
fn chunked_request_body_over_max_body_bytes_is_413() {
    let s = Server::start_with(&[], Some("[limits]\nmax_body_bytes = 1000\n"));
    let payload = serde_json::to_vec(&json!({"records": [{"data": "x".repeat(3000)}]})).unwrap();
    let parts: Vec<&[u8]> = payload.chunks(500).collect();
    let headers = [
        ("Content-Type", "application/json"),
        ("Transfer-Encoding", "chunked"),
    ];
    let resp = s.req("POST", "/v0/topics/t", &headers, &chunked(&parts));
    assert_error(&resp, 413, "payload_too_large");
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
}

// ---- HTTP/2 prior knowledge ----

const H2_DATA: u8 = 0;
const H2_HEADERS: u8 = 1;
const H2_SETTINGS: u8 = 4;
const H2_GOAWAY: u8 = 7;
const H2_RST_STREAM: u8 = 3;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// HPACK "literal header field without indexing, indexed name" (no Huffman).
fn hpack_literal(name_index: u8, value: &str) -> Vec<u8> {
    assert!(name_index < 16 && value.len() < 127);
    let mut out = vec![name_index, value.len() as u8];
    out.extend_from_slice(value.as_bytes());
    out
}

/// Strip padding (and priority fields for HEADERS) from a frame payload.
fn h2_unpad(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = payload;
    let mut pad = 0;
    if flags & FLAG_PADDED != 0 {
        pad = p[0] as usize;
        p = &p[1..];
    }
    if kind == H2_HEADERS && flags & FLAG_PRIORITY != 0 {
        p = &p[5..];
    }
    p[..p.len() - pad].to_vec()
}

/// GET `path` over h2c with prior knowledge; returns (first byte of the response header block,
/// response body).
fn h2_get(addr: std::net::SocketAddr, path: &str) -> (u8, Vec<u8>) {
    let mut conn = connect(addr);
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(H2_SETTINGS, 0, 0, &[]));
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    block.extend(hpack_literal(4, path)); // :path
    block.extend(hpack_literal(1, &addr.to_string())); // :authority
    out.extend(h2_frame(
        H2_HEADERS,
        FLAG_END_STREAM | FLAG_END_HEADERS,
        1,
        &block,
    ));
    conn.write_all(&out).unwrap();

    let (mut status_byte, mut body) = (None, Vec::new());
    for _ in 0..100 {
        let mut head = [0u8; 9];
        conn.read_exact(&mut head)
            .expect("h2 frame header (does the port speak h2c?)");
        let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        conn.read_exact(&mut payload).unwrap();
        match kind {
            H2_SETTINGS if flags & FLAG_ACK == 0 => conn
                .write_all(&h2_frame(H2_SETTINGS, FLAG_ACK, 0, &[]))
                .unwrap(),
            H2_GOAWAY | H2_RST_STREAM => panic!("h2 {kind} frame: {payload:?}"),
            H2_HEADERS if stream == 1 => {
                status_byte.get_or_insert(h2_unpad(kind, flags, &payload)[0]);
                if flags & FLAG_END_STREAM != 0 {
                    break;
                }
            }
            H2_DATA if stream == 1 => {
                body.extend(h2_unpad(kind, flags, &payload));
                if flags & FLAG_END_STREAM != 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    (status_byte.expect("no response HEADERS on stream 1"), body)
}

#[test]
fn http2_prior_knowledge_is_served_on_the_same_port() {
    let s = Server::start();
    let (status, body) = h2_get(s.addr, "/healthz");
    // 0x88 is HPACK static-table index 8, `:status: 200`.
    assert_eq!(status, 0x88, "expected an indexed :status 200");
    let v: Value = serde_json::from_slice(&body).expect("JSON body over h2");
    assert_eq!(v["status"], "ok");
    s.create("t", json!({}));
    let (_, body) = h2_get(s.addr, "/v0/topics/t?touch=false");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["topic"], "t");
}
