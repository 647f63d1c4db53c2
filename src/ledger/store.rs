//! The ledger on disk: a compacted snapshot plus an append-only log, both as checksummed JSON
//! lines, in generations so that every step of a compaction is crash-safe.
//!
//! Files in the data directory (`store.dir`):
//! - `ledger-<G>.snapshot`: every record needed to rebuild the state at compaction `G`;
//! - `ledger-<G>.log`: records appended since, fsynced after every reconcile.
//!
//! Each line is `<crc32 of the JSON, 8 hex digits> <JSON record>`. Compaction writes
//! `ledger-<G+1>.snapshot.tmp`, fsyncs it, renames it into place, fsyncs the directory, starts
//! `ledger-<G+1>.log`, and only then deletes generation `G`. On start the newest complete
//! snapshot and its log are replayed; a torn last log line (a crash mid-write) is dropped.
//!
//! - `ledger.lock`: locked (`flock`) by the one process that has the ledger open for writing,
//!   for as long as it does. Another that tries is refused: two writers would each compact and
//!   delete the other's generations, and a state replayed from files being deleted under it
//!   reads as empty. The kernel lets go of the lock when the process dies.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::state::{LedgerState, Record};

/// The ledger's files could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// An I/O failure on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// Another process has the ledger open for writing.
    #[error(
        "{}: another process has this ledger open for writing; only one may write it at a time",
        path.display()
    )]
    Held {
        /// The lock file.
        path: PathBuf,
    },
    /// A damaged line that is not the last one: the file was altered or the disk is failing.
    #[error(
        "{}:{line}: damaged ledger record ({reason}); move the file aside to start from the last snapshot",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The ledger's files, open for appending.
#[derive(Debug)]
pub struct LedgerStore {
    dir: PathBuf,
    generation: u64,
    log: File,
    log_bytes: u64,
    /// `ledger.lock`, locked for as long as the store is open.
    _lock: File,
}

/// Locks `ledger.lock` in `dir` for writing, or says who holds it.
fn lock(dir: &Path) -> Result<File, LedgerError> {
    let path = dir.join("ledger.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(LedgerError::Held { path }),
        Err(fs::TryLockError::Error(e)) => Err(io(&path)(e)),
    }
}

fn snapshot_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("ledger-{generation}.snapshot"))
}

fn log_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("ledger-{generation}.log"))
}

fn encode(record: &Record) -> String {
    let json =
        serde_json::to_string(record).unwrap_or_else(|e| unreachable!("records serialize: {e}"));
    format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()))
}

fn decode(line: &str) -> Result<Record, String> {
    let (crc, json) = line.split_once(' ').ok_or("no checksum")?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| "bad checksum field")?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| e.to_string())
}

/// Replays a file into `state`; returns the byte length of its valid prefix. A damaged last
/// line is dropped with a note; a damaged line before the last is an error.
fn replay(
    path: &Path,
    state: &mut LedgerState,
    notes: &mut Vec<String>,
) -> Result<u64, LedgerError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(path)(e)),
    };
    let mut reader = BufReader::new(file);
    let mut valid = 0u64;
    let mut line_no = 0;
    let mut pending: Option<(usize, String)> = None;
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line).map_err(io(path))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        if let Some((bad_line, reason)) = pending.take() {
            return Err(LedgerError::Corrupt {
                path: path.to_path_buf(),
                line: bad_line,
                reason,
            });
        }
        let complete = line.ends_with('\n');
        match decode(line.trim_end_matches('\n')) {
            Ok(record) if complete => {
                state.apply(&record);
                valid += read as u64;
            }
            Ok(_) => pending = Some((line_no, "unterminated line".into())),
            Err(reason) => pending = Some((line_no, reason)),
        }
    }
    if let Some((line, reason)) = pending {
        notes.push(format!(
            "{}:{line}: dropped a torn last record ({reason}), left by a crash while writing",
            path.display()
        ));
    }
    Ok(valid)
}

fn sync_dir(dir: &Path) -> Result<(), LedgerError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The newest generation with a complete snapshot in `dir` (0 when none).
fn newest_generation(dir: &Path) -> Result<u64, LedgerError> {
    let mut newest = 0;
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let name = entry.map_err(io(dir))?.file_name();
        let name = name.to_string_lossy();
        if let Some(g) = name
            .strip_prefix("ledger-")
            .and_then(|r| r.strip_suffix(".snapshot"))
            .and_then(|g| g.parse::<u64>().ok())
        {
            newest = newest.max(g);
        }
    }
    Ok(newest)
}

/// Replays generation `generation` of `dir`: the state, the valid length of its log, notes.
fn replay_generation(
    dir: &Path,
    generation: u64,
) -> Result<(LedgerState, u64, Vec<String>), LedgerError> {
    let mut state = LedgerState::default();
    let mut notes = Vec::new();
    replay(&snapshot_path(dir, generation), &mut state, &mut notes)?;
    let valid = replay(&log_path(dir, generation), &mut state, &mut notes)?;
    Ok((state, valid, notes))
}

/// Tries at reading a ledger another process keeps compacting.
const READ_ATTEMPTS: usize = 5;

/// Reads the ledger in `dir` without taking it over, while another process may be writing
/// it: a generation is read again if a compaction replaced it meanwhile. A missing directory
/// is an empty ledger.
pub fn read_ledger(dir: &Path) -> Result<(LedgerState, Vec<String>), LedgerError> {
    if !dir.exists() {
        return Ok((LedgerState::default(), Vec::new()));
    }
    for _ in 0..READ_ATTEMPTS {
        let generation = newest_generation(dir)?;
        let (state, _, notes) = replay_generation(dir, generation)?;
        if newest_generation(dir)? == generation {
            return Ok((state, notes));
        }
    }
    Err(io(dir)(std::io::Error::other(
        "the ledger was compacted during every read; try again",
    )))
}

impl LedgerStore {
    /// Opens (creating if needed) the ledger in `dir` for writing and replays it. Returns the
    /// store, the state it holds, and notes about anything repaired. Refused while another
    /// process has it open ([`LedgerError::Held`]).
    pub fn open(dir: &Path) -> Result<(LedgerStore, LedgerState, Vec<String>), LedgerError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let held = lock(dir)?;
        let generation = newest_generation(dir)?;
        let (state, valid, notes) = replay_generation(dir, generation)?;
        let log = log_path(dir, generation);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io(&log))?;
        // Cut a torn tail so that new records follow the last good one.
        file.set_len(valid).map_err(io(&log))?;
        let store = LedgerStore {
            dir: dir.to_path_buf(),
            generation,
            log: file,
            log_bytes: valid,
            _lock: held,
        };
        store.remove_other_generations()?;
        Ok((store, state, notes))
    }

    /// Appends records and makes them durable before returning.
    pub fn append(&mut self, records: &[Record]) -> Result<(), LedgerError> {
        let path = log_path(&self.dir, self.generation);
        let text: String = records.iter().map(encode).collect();
        self.log.write_all(text.as_bytes()).map_err(io(&path))?;
        self.log.sync_data().map_err(io(&path))?;
        self.log_bytes += text.len() as u64;
        Ok(())
    }

    /// Bytes in the current log.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Writes `state` as the next generation's snapshot and starts an empty log.
    pub fn compact(&mut self, state: &LedgerState) -> Result<(), LedgerError> {
        let next = self.generation + 1;
        let tmp = self.dir.join(format!("ledger-{next}.snapshot.tmp"));
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let mut writer = BufWriter::new(file);
        for record in state.records() {
            writer
                .write_all(encode(&record).as_bytes())
                .map_err(io(&tmp))?;
        }
        let file = writer.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        file.sync_all().map_err(io(&tmp))?;
        let snapshot = snapshot_path(&self.dir, next);
        fs::rename(&tmp, &snapshot).map_err(io(&snapshot))?;
        sync_dir(&self.dir)?;
        let log = log_path(&self.dir, next);
        self.log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io(&log))?;
        self.log.set_len(0).map_err(io(&log))?;
        sync_dir(&self.dir)?;
        self.generation = next;
        self.log_bytes = 0;
        self.remove_other_generations()
    }

    fn remove_other_generations(&self) -> Result<(), LedgerError> {
        let keep = [
            snapshot_path(&self.dir, self.generation),
            log_path(&self.dir, self.generation),
        ];
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let is_ledger = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ledger-"));
            if is_ledger && !keep.contains(&path) {
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(())
    }
}
