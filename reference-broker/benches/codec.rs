//! Codec throughput, side by side with mqttbytes 0.6 on the same bytes: decode and encode a
//! realistic mix (PUBLISH QoS 0/1 with 16 B..64 KiB payloads, acks, pings; MQTT 5 with
//! properties). Run: `cargo bench -p reference-broker --bench codec`, or
//! `CODEC_BENCH_MIN=2000 cargo bench -p reference-broker --bench codec` for the fastest of
//! 2000 runs of each decoder (robust on a busy machine).
#![allow(missing_docs, clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use mqttbytes::{v4, v5};
use reference_broker::codec::*;

const PAYLOADS: [usize; 6] = [16, 64, 256, 1024, 4096, 65536];

/// The mix: for every payload size a QoS 0 and a QoS 1 PUBLISH, then a PUBACK; pings.
fn mix(v: ProtocolVersion) -> Vec<Packet> {
    let v5 = v.is_v5();
    let mut out = Vec::new();
    let mut id = 1u16;
    for round in 0..4 {
        for &size in &PAYLOADS {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
                let properties = if v5 {
                    Properties {
                        payload_format_indicator: Some(1),
                        message_expiry_interval: Some(3600),
                        content_type: Some("application/json".into()),
                        user_properties: vec![(
                            "trace-id".into(),
                            format!("abc-{round}-{size}").into(),
                        )],
                        ..Default::default()
                    }
                } else {
                    Properties::default()
                };
                out.push(Packet::Publish(Publish {
                    dup: false,
                    qos,
                    retain: false,
                    topic: format!("sensors/building-{round}/floor/{size}/temperature").into(),
                    packet_id: if qos == QoS::AtMostOnce { 0 } else { id },
                    properties: properties.into(),
                    payload: Bytes::from(vec![b'x'; size]),
                }));
                if qos == QoS::AtLeastOnce {
                    out.push(Packet::PubAck(PubResponse {
                        packet_id: id,
                        ..Default::default()
                    }));
                    id += 1;
                }
            }
        }
        out.push(Packet::PingReq);
        out.push(Packet::PingResp);
    }
    out
}

fn stream(packets: &[Packet], v: ProtocolVersion) -> Bytes {
    let mut buf = BytesMut::new();
    for p in packets {
        encode(p, v, &mut buf).unwrap();
    }
    buf.freeze()
}

// Each decoder drops every packet as it goes (as a broker would) and hands the emptied
// buffer back, so that freeing the input allocation falls outside the measurement.

fn decode_ours(mut buf: BytesMut, v: ProtocolVersion) -> (usize, BytesMut) {
    let mut d = Decoder::with_version(v, usize::MAX);
    let mut n = 0;
    // Matched by reference, as a protocol handler would, so neither side pays for moving
    // its packet model.
    while let Ok(Some(ref p)) = d.decode(&mut buf) {
        std::hint::black_box(p);
        n += 1;
    }
    (n, buf)
}

fn decode_v4(mut buf: BytesMut) -> (usize, BytesMut) {
    let mut n = 0;
    while !buf.is_empty() {
        if let Ok(ref p) = v4::read(&mut buf, usize::MAX) {
            std::hint::black_box(p);
        }
        n += 1;
    }
    (n, buf)
}

fn decode_v5(mut buf: BytesMut) -> (usize, BytesMut) {
    let mut n = 0;
    while !buf.is_empty() {
        if let Ok(ref p) = v5::read(&mut buf, usize::MAX) {
            std::hint::black_box(p);
        }
        n += 1;
    }
    (n, buf)
}

fn write_v4(p: &v4::Packet, b: &mut BytesMut) {
    match p {
        v4::Packet::Publish(x) => x.write(b).map(drop),
        v4::Packet::PubAck(x) => x.write(b).map(drop),
        v4::Packet::PingReq => v4::PingReq.write(b).map(drop),
        v4::Packet::PingResp => v4::PingResp.write(b).map(drop),
        other => panic!("not in the mix: {other:?}"),
    }
    .unwrap()
}

fn write_v5(p: &v5::Packet, b: &mut BytesMut) {
    match p {
        v5::Packet::Publish(x) => x.write(b).map(drop),
        v5::Packet::PubAck(x) => x.write(b).map(drop),
        v5::Packet::PingReq => v5::PingReq.write(b).map(drop),
        v5::Packet::PingResp => v5::PingResp.write(b).map(drop),
        other => panic!("not in the mix: {other:?}"),
    }
    .unwrap()
}

fn bench(c: &mut Criterion) {
    // `small`: the same mix without the 4 KiB and 64 KiB payloads, so that it stays in cache
    // and measures the per-packet work rather than memory traffic.
    for (v, small) in [
        (ProtocolVersion::V3_1_1, false),
        (ProtocolVersion::V5, false),
        (ProtocolVersion::V3_1_1, true),
        (ProtocolVersion::V5, true),
    ] {
        let name = match (v.is_v5(), small) {
            (false, false) => "v311",
            (true, false) => "v5",
            (false, true) => "v311_small",
            (true, true) => "v5_small",
        };
        let mut packets = mix(v);
        if small {
            packets.retain(|p| !matches!(p, Packet::Publish(p) if p.payload.len() > 1024));
        }
        let bytes = stream(&packets, v);
        let count = packets.len();

        let mut g = c.benchmark_group(format!("decode_{name}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("ours", |b| {
            b.iter_batched(
                || BytesMut::from(&bytes[..]),
                |buf| {
                    let (n, rest) = decode_ours(buf, v);
                    assert_eq!(n, count);
                    rest
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("mqttbytes", |b| {
            b.iter_batched(
                || BytesMut::from(&bytes[..]),
                |buf| {
                    let (n, rest) = if v.is_v5() {
                        decode_v5(buf)
                    } else {
                        decode_v4(buf)
                    };
                    assert_eq!(n, count);
                    rest
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();

        // The same packets in each library's own model, decoded once up front.
        let theirs_v4: Vec<v4::Packet> = if v.is_v5() {
            Vec::new()
        } else {
            let mut buf = BytesMut::from(&bytes[..]);
            (0..count)
                .map(|_| v4::read(&mut buf, usize::MAX).unwrap())
                .collect()
        };
        let theirs_v5: Vec<v5::Packet> = if v.is_v5() {
            let mut buf = BytesMut::from(&bytes[..]);
            (0..count)
                .map(|_| v5::read(&mut buf, usize::MAX).unwrap())
                .collect()
        } else {
            Vec::new()
        };
        let mut g = c.benchmark_group(format!("encode_{name}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("ours", |b| {
            b.iter_batched_ref(
                || BytesMut::with_capacity(bytes.len()),
                |buf| {
                    for p in &packets {
                        encode(p, v, buf).unwrap();
                    }
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("mqttbytes", |b| {
            b.iter_batched_ref(
                || BytesMut::with_capacity(bytes.len()),
                |buf| {
                    for p in &theirs_v4 {
                        write_v4(p, buf);
                    }
                    for p in &theirs_v5 {
                        write_v5(p, buf);
                    }
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

/// `CODEC_BENCH_MIN=<runs>`: instead of criterion, time every decode `runs` times and print
/// the fastest run of each: the minimum is robust on a machine shared with other jobs. Each
/// input is copied into a fresh buffer right before it is decoded (warm in cache, like bytes
/// just read from a socket, and like criterion's `iter_batched` setup); emptied buffers are
/// kept until the end so that freeing them is not timed either.
fn min_times(runs: usize) {
    println!("mix            packets  ours(min)  mqttbytes(min)  mqttbytes/ours");
    for (v, small) in [
        (ProtocolVersion::V3_1_1, false),
        (ProtocolVersion::V5, false),
        (ProtocolVersion::V3_1_1, true),
        (ProtocolVersion::V5, true),
    ] {
        let mut packets = mix(v);
        if small {
            packets.retain(|p| !matches!(p, Packet::Publish(p) if p.payload.len() > 1024));
        }
        let bytes = stream(&packets, v);
        // The two decoders take turns, run by run, so that a change in the machine's load
        // during the measurement reaches both alike.
        let decode_theirs = |b: BytesMut| {
            if v.is_v5() {
                decode_v5(b)
            } else {
                decode_v4(b)
            }
        };
        let (mut ours, mut theirs) = (std::time::Duration::MAX, std::time::Duration::MAX);
        let mut kept = Vec::with_capacity(2 * runs);
        for _ in 0..runs {
            for (f, best) in [
                (
                    &(|b| decode_ours(b, v)) as &dyn Fn(BytesMut) -> (usize, BytesMut),
                    &mut ours,
                ),
                (&decode_theirs, &mut theirs),
            ] {
                // Copied just before decoding, so the input is in cache as bytes just read
                // from a socket are: the decoders are measured, not memory latency.
                let input = BytesMut::from(&bytes[..]);
                let start = std::time::Instant::now();
                let (n, rest) = f(input);
                *best = (*best).min(start.elapsed());
                assert_eq!(n, packets.len());
                // Emptied buffers are freed after the measurement, not inside it.
                kept.push(rest);
            }
        }
        let name = format!(
            "{}{}",
            if v.is_v5() { "v5" } else { "v311" },
            if small { "_small" } else { "" }
        );
        println!(
            "{name:<14} {:>7}  {:>9.2?}  {:>14.2?}  {:>14.2}  decode",
            packets.len(),
            ours,
            theirs,
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
        // Encode: the same packets in each library's model, written to a fresh buffer.
        let mut buf = BytesMut::from(&bytes[..]);
        let theirs_v4: Vec<v4::Packet> = if v.is_v5() {
            Vec::new()
        } else {
            (0..packets.len())
                .map(|_| v4::read(&mut buf, usize::MAX).unwrap())
                .collect()
        };
        let theirs_v5: Vec<v5::Packet> = if v.is_v5() {
            (0..packets.len())
                .map(|_| v5::read(&mut buf, usize::MAX).unwrap())
                .collect()
        } else {
            Vec::new()
        };
        let encode_ours = |out: &mut BytesMut| {
            for p in &packets {
                encode(p, v, out).unwrap();
            }
        };
        let encode_theirs = |out: &mut BytesMut| {
            for p in &theirs_v4 {
                write_v4(p, out);
            }
            for p in &theirs_v5 {
                write_v5(p, out);
            }
        };
        // Taking turns run by run, as for decoding, each into an emptied buffer that already
        // has the room (a fresh half-megabyte buffer each run measured the allocator's
        // page faults, not the encoders).
        let (mut ours, mut theirs) = (std::time::Duration::MAX, std::time::Duration::MAX);
        let mut out = BytesMut::with_capacity(bytes.len());
        for _ in 0..runs {
            for (f, best) in [
                (&encode_ours as &dyn Fn(&mut BytesMut), &mut ours),
                (&encode_theirs, &mut theirs),
            ] {
                out.clear();
                let start = std::time::Instant::now();
                f(&mut out);
                *best = (*best).min(start.elapsed());
                assert_eq!(out.len(), bytes.len());
            }
        }
        println!(
            "{name:<14} {:>7}  {:>9.2?}  {:>14.2?}  {:>14.2}  encode",
            packets.len(),
            ours,
            theirs,
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    if let Some(runs) = std::env::var("CODEC_BENCH_MIN")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        min_times(runs);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
