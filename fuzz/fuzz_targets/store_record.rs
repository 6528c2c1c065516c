//! Feeds arbitrary bytes to the file store's record decoder and to its
//! recovery (`natrium::jetstream::store::record`, `file::FileStore::open_with`
//! on the simulated disk), as if they had been read back from a damaged
//! segment file.
//!
//! Checked for every input:
//! - nothing panics, and recovery never fails (damage is reported, not an
//!   error);
//! - every record the decoder accepts re-encodes to exactly the bytes it was
//!   decoded from (a record is never "repaired" into another message);
//! - every message recovery returns is a record that occurs verbatim in the
//!   input (nothing invented from damaged bytes);
//! - the store accepts appends after recovery, above its recovered last
//!   sequence.
//!
//! Input layout: byte 0 bit 0 prepends a valid segment header (so the
//! records region is reached), bit 1 also writes the input as the metadata
//! file; the rest is the segment's content.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natrium::jetstream::store::MessageStore;
use natrium::jetstream::store::file::{FileStore, FileStoreConfig};
use natrium::jetstream::store::fs::{FileSystem, SimFs};
use natrium::jetstream::store::record::{self, Decoded, Record};
use std::path::Path;
use std::sync::Arc;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    // The decoder over every offset.
    for at in 0..data.len() {
        if let Decoded::Ok(rec, n) = record::decode(&data[at..]) {
            assert!(n <= data.len() - at);
            if let Record::Msg {
                seq,
                time,
                subject,
                headers,
                payload,
            } = rec
            {
                let mut again = Vec::new();
                record::encode_msg(&mut again, seq, time, subject, headers, payload);
                assert_eq!(&again[..], &data[at..at + n]);
            }
        }
        let _ = record::peek(&data[at..]);
    }
    let _ = record::resync(data, 0);
    let _ = record::parse_seg_header(data);
    let _ = record::erased(data);

    // Recovery over the bytes as a segment file.
    let sim = SimFs::new(0);
    let fs: Arc<dyn FileSystem> = Arc::new(sim);
    let dir = Path::new("/js/S");
    fs.create_dir_all(dir).unwrap();
    let seg = dir.join("00000001.seg");
    let mut content = Vec::new();
    if mode & 1 == 1 {
        content.extend_from_slice(&record::encode_seg_header(b"{}"));
    }
    content.extend_from_slice(data);
    fs.create(&seg).unwrap();
    fs.write_at(&seg, 0, &content).unwrap();
    if mode & 2 == 2 {
        fs.create(&dir.join("meta")).unwrap();
        fs.write_at(&dir.join("meta"), 0, data).unwrap();
    }
    let cfg = FileStoreConfig::default();
    let mut store =
        FileStore::open_with(fs.clone(), dir, b"{}", cfg).expect("recovery must not fail");
    let st = store.state();
    let mut from = 1;
    let mut n = 0;
    while let Ok(Some(m)) = store.load_next(from, None) {
        let mut rec = Vec::new();
        record::encode_msg(
            &mut rec, m.seq, m.time_ns, &m.subject, &m.headers, &m.payload,
        );
        assert!(
            contains(&content, &rec),
            "message {} was not in the input",
            m.seq
        );
        from = m.seq + 1;
        n += 1;
        if from == 0 {
            break;
        }
    }
    assert_eq!(n, st.msgs);
    if st.last_seq < record::MAX_SEQ {
        let q = store
            .append("a.b", b"", b"x", 1)
            .expect("append after recovery");
        assert!(q > st.last_seq);
    }
    let _ = FileStore::recover_config_with(fs.as_ref(), dir);
});
