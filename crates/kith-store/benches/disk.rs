//! Bytes on disk per post, signature and indexes included (target: at most
//! 300 B). A fresh store ingests another person's 280-character posts; the
//! redb file is measured as ingest leaves it and again after compaction, and
//! each table's share is listed. Not a criterion benchmark: it prints sizes.

mod corpus;

use std::path::Path;

use corpus::Corpus;
use kith_store::Store;
use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};

const SIZES: [usize; 2] = [10_000, 100_000];
const TARGET_BYTES_PER_POST: f64 = 300.0;

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("store file").len()
}

/// Each table's share of the file, from redb's own accounting.
fn table_breakdown(path: &Path, posts: usize) {
    let db = redb::Database::open(path).expect("reopen the store with redb");
    let db_stats = db
        .begin_write()
        .expect("write transaction")
        .stats()
        .expect("database stats");
    let page = db_stats.page_size() as u64;
    let txn = db.begin_read().expect("read transaction");
    let mut rows = Vec::new();
    for handle in txn.list_tables().expect("list tables") {
        let name = handle.name().to_owned();
        let table = txn.open_untyped_table(handle).expect("open table");
        let stats = table.stats().expect("table stats");
        let pages = stats.leaf_pages() + stats.branch_pages();
        rows.push((
            name,
            table.len().expect("table length"),
            stats.stored_bytes(),
            pages * page,
        ));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.3));
    let per = |b: u64| b as f64 / posts as f64;
    println!(
        "    {:<16} {:>9} {:>18} {:>18}",
        "table", "entries", "key+value B/post", "pages B/post"
    );
    let (mut stored, mut paged) = (0, 0);
    for (name, len, bytes, page_bytes) in rows.iter().filter(|r| r.1 > 0) {
        stored += bytes;
        paged += page_bytes;
        println!(
            "    {name:<16} {len:>9} {:>18.1} {:>18.1}",
            per(*bytes),
            per(*page_bytes)
        );
    }
    println!(
        "    {:<16} {:>9} {:>18.1} {:>18.1}",
        "all tables",
        "",
        per(stored),
        per(paged)
    );
    println!(
        "    redb: {} pages allocated ({:.1} B/post), {:.1} B/post fragmented, {:.1} B/post metadata",
        db_stats.allocated_pages(),
        per(db_stats.allocated_pages() * page),
        per(db_stats.fragmented_bytes()),
        per(db_stats.metadata_bytes()),
    );
}

fn main() {
    let corpus = Corpus::generate(*SIZES.iter().max().expect("sizes"));
    let raw_change_bytes: usize = corpus.changes.iter().map(|c| c.change.len()).sum();
    println!(
        "disk: posts of {} characters; an uncompressed signed change averages {:.0} B + 64 B signature",
        corpus::POST_CHARS,
        raw_change_bytes as f64 / corpus.changes.len() as f64
    );
    for n in SIZES {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("kith.redb");
        let prefix = Corpus {
            cert: corpus.cert.clone(),
            changes: corpus.changes[..n].to_vec(),
            posts: corpus.posts[..n].to_vec(),
        };
        let mut store = Store::open(&path).expect("open");
        prefix.ingest_into(&mut store);
        assert_eq!(store.counts().expect("counts").posts, n as u64);
        let ingested = file_len(&path);
        let started = std::time::Instant::now();
        let compacted_any = store.compact().expect("compact");
        let compaction_s = started.elapsed().as_secs_f64();
        let compacted = file_len(&path);
        drop(store);
        let per_post = |b: u64| b as f64 / n as f64;
        let verdict = |b: u64| {
            if per_post(b) <= TARGET_BYTES_PER_POST {
                "meets"
            } else {
                "MISSES"
            }
        };
        println!("disk: {n} posts");
        println!(
            "  after ingest:     {ingested:>11} B = {:>7.1} B/post ({} the {TARGET_BYTES_PER_POST} B target)",
            per_post(ingested),
            verdict(ingested)
        );
        println!(
            "  after compaction: {compacted:>11} B = {:>7.1} B/post ({} the {TARGET_BYTES_PER_POST} B target), \
             compaction took {compaction_s:.1} s{}",
            per_post(compacted),
            verdict(compacted),
            if compacted_any {
                ""
            } else {
                " [nothing to compact]"
            }
        );
        table_breakdown(&path, n);
    }
}
