//! What client-side encryption costs on this machine, one thread: the key
//! slot's argon2id derivation with the default parameters (the time a
//! password takes to open a repository), and the throughput of the envelope
//! (XChaCha20-Poly1305) and of keyed (HMAC-SHA256, BLAKE3) against plain
//! content ids, over 1 MiB chunks.
//!
//! `cargo run --release --example crypto_costs` prints one JSON line.

use std::time::Instant;

use snapkeep::core::crypto::content_ids::{IdScheme, KeyedIdKind};
use snapkeep::core::crypto::envelope::{open, seal, ObjectKind};
use snapkeep::core::crypto::keys::MasterKey;
use snapkeep::core::crypto::slot::{Argon2Params, KeySlot};

const RUNS: usize = 5;
const DATA_LEN: usize = 64 << 20;

fn main() {
    let master = MasterKey::from_bytes([7; 32]);
    let params = Argon2Params::DEFAULT;
    let slot = KeySlot::wrap(&master, b"password", params, [1; 16], [2; 24]).expect("wrap");
    let open_secs = median(|| {
        slot.open(b"password").expect("open");
    });

    let data: Vec<u8> = (0..DATA_LEN as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let key = master.data_key();
    let mut sealed = Vec::new();
    let seal_secs = median(|| sealed = seal(&key, ObjectKind::DataBlob, &[3; 24], &data));
    let open_data_secs = median(|| {
        open(&key, ObjectKind::DataBlob, &sealed).expect("opens");
    });
    let ids_secs = |scheme: IdScheme| {
        median(|| {
            for chunk in data.chunks(1 << 20) {
                std::hint::black_box(scheme.id_of(chunk));
            }
        })
    };
    let keyed_secs = ids_secs(IdScheme::keyed(
        KeyedIdKind::HmacSha256,
        &master.content_id_key(),
    ));
    let blake3_secs = ids_secs(IdScheme::keyed(
        KeyedIdKind::Blake3,
        &master.content_id_key(),
    ));
    let plain_secs = ids_secs(IdScheme::Plain);

    let mbps = |secs: f64| DATA_LEN as f64 / secs / 1e6;
    println!(
        "{{\"argon2id\":{{\"memory_kib\":{},\"iterations\":{},\"parallelism\":{},\"open_seconds\":{:.3}}},\
         \"seal_mb_s\":{:.0},\"open_mb_s\":{:.0},\"hmac_id_mb_s\":{:.0},\"blake3_id_mb_s\":{:.0},\
         \"plain_id_mb_s\":{:.0}}}",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        open_secs,
        mbps(seal_secs),
        mbps(open_data_secs),
        mbps(keyed_secs),
        mbps(blake3_secs),
        mbps(plain_secs),
    );
}

/// The median of `RUNS` timings of `f`, in seconds.
fn median(mut f: impl FnMut()) -> f64 {
    let mut secs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    secs.sort_by(f64::total_cmp);
    secs[RUNS / 2]
}
