//! The file-system interface the file store and the storage thread use,
//! and its two implementations: [`RealFs`] (std::fs) and [`SimFs`], a
//! deterministic simulated disk for tests.
//!
//! The interface is by path (no handles), so a job can be built on the
//! event loop and run on the storage thread. [`RealFs`] keeps open files in
//! a small table behind a mutex (held only to look a file up, never during
//! the I/O itself).
//!
//! [`SimFs`] keeps, for every file, what was written apart from what was
//! synced, and for every directory which names were made durable by a
//! directory sync. [`SimFs::power_cut`] keeps only durable state (and,
//! when asked, a torn prefix of the unsynced writes, in order); damage
//! methods flip bits, truncate, zero ranges and delete files.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the stores need of a file system.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the entries of `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates an empty file (truncating one that exists).
    fn create(&self, path: &Path) -> io::Result<()>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// The length of a file.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Reads at `offset` into `buf`; the bytes read (short at the end).
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes `data` at `offset` of an existing file.
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Appends `data` to an existing file; the offset it was written at.
    fn append(&self, path: &Path, data: &[u8]) -> io::Result<u64> {
        let at = self.len(path)?;
        self.write_at(path, at, data)?;
        Ok(at)
    }
    /// Cuts a file to `len` bytes.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Makes a file's data durable (fdatasync).
    fn sync_data(&self, path: &Path) -> io::Result<()>;
    /// Renames a file (replacing `to`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory.
    fn remove_dir(&self, dir: &Path) -> io::Result<()>;
    /// Makes a directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// A whole file, read in bounded pieces.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let len = usize::try_from(self.len(path)?).map_err(|_| io::ErrorKind::InvalidData)?;
        let mut buf = vec![0u8; len];
        let mut at = 0;
        while at < len {
            let n = self.read_at(path, at as u64, &mut buf[at..])?;
            if n == 0 {
                break;
            }
            at += n;
        }
        buf.truncate(at);
        Ok(buf)
    }
}

/// The real file system.
#[derive(Debug, Default)]
pub struct RealFs {
    open: Mutex<HashMap<PathBuf, Arc<File>>>,
}

impl RealFs {
    /// A file system with an empty table of open files.
    pub fn new() -> RealFs {
        RealFs::default()
    }

    fn table(&self) -> MutexGuard<'_, HashMap<PathBuf, Arc<File>>> {
        // A poisoned table only means another thread panicked while looking
        // a file up; the map itself is still consistent.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn file(&self, path: &Path) -> io::Result<Arc<File>> {
        if let Some(f) = self.table().get(path) {
            return Ok(f.clone());
        }
        let f = Arc::new(OpenOptions::new().read(true).write(true).open(path)?);
        let mut t = self.table();
        if t.len() >= 256 {
            t.clear();
        }
        t.insert(path.to_path_buf(), f.clone());
        Ok(f)
    }

    fn forget(&self, path: &Path) {
        self.table().remove(path);
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            if let Some(n) = e?.file_name().to_str() {
                out.push(n.to_string());
            }
        }
        Ok(out)
    }
    fn create(&self, path: &Path) -> io::Result<()> {
        self.forget(path);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        self.table().insert(path.to_path_buf(), Arc::new(f));
        Ok(())
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.file(path)?.read_at(buf, offset)
    }
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file(path)?.write_all_at(data, offset)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.file(path)?.set_len(len)
    }
    fn sync_data(&self, path: &Path) -> io::Result<()> {
        self.file(path)?.sync_data()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.forget(from);
        self.forget(to);
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.forget(path);
        std::fs::remove_file(path)
    }
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// splitmix64: the simulator's (and the simulation tests') generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

#[derive(Debug, Clone, Default)]
struct Inode {
    /// What a read sees.
    data: Vec<u8>,
    /// What survives a power cut.
    synced: Vec<u8>,
    /// Writes since the last sync, in order (offset, bytes; a truncation is
    /// a write of no bytes at the new length with `trunc`).
    unsynced: Vec<(u64, Vec<u8>, bool)>,
}

#[derive(Debug, Default)]
struct SimState {
    inodes: Vec<Inode>,
    /// Names as the running system sees them.
    names: BTreeMap<PathBuf, usize>,
    /// Names a power cut leaves.
    durable: BTreeMap<PathBuf, usize>,
    /// Directories (always durable; created ones are kept).
    dirs: Vec<PathBuf>,
    rng: Option<Rng>,
    /// Fail every write and sync from now on.
    failing: bool,
    /// Counts of operations, for the tests.
    syncs: u64,
}

/// A simulated disk, deterministic for a seed.
#[derive(Debug, Clone)]
pub struct SimFs {
    st: Arc<Mutex<SimState>>,
}

fn err(kind: io::ErrorKind, what: &str) -> io::Error {
    io::Error::new(kind, what.to_string())
}

impl SimFs {
    /// An empty disk whose tearing choices come from `seed`.
    pub fn new(seed: u64) -> SimFs {
        SimFs {
            st: Arc::new(Mutex::new(SimState {
                rng: Some(Rng::new(seed)),
                ..SimState::default()
            })),
        }
    }

    fn st(&self) -> MutexGuard<'_, SimState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loses power: every file goes back to what was synced, every
    /// directory to its last directory sync. With `tear`, each file keeps a
    /// random prefix of its unsynced writes, the last one possibly cut.
    pub fn power_cut(&self, tear: bool) {
        let mut st = self.st();
        let mut rng = st.rng.take().unwrap_or_else(|| Rng::new(0));
        for ino in st.inodes.iter_mut() {
            let mut data = ino.synced.clone();
            if tear && !ino.unsynced.is_empty() {
                let keep = rng.below(ino.unsynced.len() as u64 + 1) as usize;
                for (i, (off, bytes, trunc)) in ino.unsynced.iter().enumerate().take(keep) {
                    let off = *off as usize;
                    if *trunc {
                        data.resize(off, 0);
                        continue;
                    }
                    let n = if i + 1 == keep {
                        rng.below(bytes.len() as u64 + 1) as usize
                    } else {
                        bytes.len()
                    };
                    if data.len() < off + n {
                        data.resize(off + n, 0);
                    }
                    data[off..off + n].copy_from_slice(&bytes[..n]);
                }
            }
            ino.data = data.clone();
            ino.synced = data;
            ino.unsynced.clear();
        }
        st.names = st.durable.clone();
        st.rng = Some(rng);
        st.failing = false;
    }

    fn with_durable(&self, path: &Path, f: impl FnOnce(&mut Vec<u8>)) -> bool {
        let mut st = self.st();
        let Some(&i) = st.names.get(path) else {
            return false;
        };
        let ino = &mut st.inodes[i];
        f(&mut ino.data);
        ino.synced = ino.data.clone();
        ino.unsynced.clear();
        true
    }

    /// Flips one bit of a file (of its synced bytes too).
    pub fn flip_bit(&self, path: &Path, bit: u64) -> bool {
        self.with_durable(path, |d| {
            let i = (bit / 8) as usize;
            if let Some(b) = d.get_mut(i) {
                *b ^= 1 << (bit % 8);
            }
        })
    }

    /// Zeroes `len` bytes at `offset`.
    pub fn zero_range(&self, path: &Path, offset: u64, len: u64) -> bool {
        self.with_durable(path, |d| {
            let a = (offset as usize).min(d.len());
            let b = (offset.saturating_add(len) as usize).min(d.len());
            d[a..b].fill(0);
        })
    }

    /// Cuts a file to `len` bytes, durably.
    pub fn cut(&self, path: &Path, len: u64) -> bool {
        self.with_durable(path, |d| d.truncate(len as usize))
    }

    /// Deletes a file, durably.
    pub fn delete_file(&self, path: &Path) -> bool {
        let mut st = self.st();
        let a = st.names.remove(path).is_some();
        st.durable.remove(path);
        a
    }

    /// Makes every later write and sync fail (until the next power cut).
    pub fn set_failing(&self, on: bool) {
        self.st().failing = on;
    }

    /// The files that exist, with their lengths.
    pub fn files(&self) -> Vec<(PathBuf, u64)> {
        let st = self.st();
        st.names
            .iter()
            .map(|(p, &i)| (p.clone(), st.inodes[i].data.len() as u64))
            .collect()
    }

    /// The number of file and directory syncs so far.
    pub fn syncs(&self) -> u64 {
        self.st().syncs
    }

    fn inode(st: &SimState, path: &Path) -> io::Result<usize> {
        st.names
            .get(path)
            .copied()
            .ok_or_else(|| err(io::ErrorKind::NotFound, "no such file"))
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.st();
        if !st.dirs.iter().any(|d| d == dir) {
            st.dirs.push(dir.to_path_buf());
        }
        Ok(())
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.st();
        if !st.dirs.iter().any(|d| d == dir) {
            return Err(err(io::ErrorKind::NotFound, "no such directory"));
        }
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(String::from))
            .collect())
    }
    fn create(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        if st.failing {
            return Err(err(io::ErrorKind::Other, "simulated failure"));
        }
        st.inodes.push(Inode::default());
        let i = st.inodes.len() - 1;
        st.names.insert(path.to_path_buf(), i);
        Ok(())
    }
    fn exists(&self, path: &Path) -> bool {
        self.st().names.contains_key(path)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        let st = self.st();
        let i = Self::inode(&st, path)?;
        Ok(st.inodes[i].data.len() as u64)
    }
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let st = self.st();
        let i = Self::inode(&st, path)?;
        let d = &st.inodes[i].data;
        let a = (offset as usize).min(d.len());
        let n = buf.len().min(d.len() - a);
        buf[..n].copy_from_slice(&d[a..a + n]);
        Ok(n)
    }
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut st = self.st();
        if st.failing {
            return Err(err(io::ErrorKind::Other, "simulated failure"));
        }
        let i = Self::inode(&st, path)?;
        let ino = &mut st.inodes[i];
        let off = offset as usize;
        if ino.data.len() < off + data.len() {
            ino.data.resize(off + data.len(), 0);
        }
        ino.data[off..off + data.len()].copy_from_slice(data);
        ino.unsynced.push((offset, data.to_vec(), false));
        Ok(())
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut st = self.st();
        if st.failing {
            return Err(err(io::ErrorKind::Other, "simulated failure"));
        }
        let i = Self::inode(&st, path)?;
        let ino = &mut st.inodes[i];
        ino.data.resize(len as usize, 0);
        ino.unsynced.push((len, Vec::new(), true));
        Ok(())
    }
    fn sync_data(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        if st.failing {
            return Err(err(io::ErrorKind::Other, "simulated sync failure"));
        }
        st.syncs += 1;
        let i = Self::inode(&st, path)?;
        let ino = &mut st.inodes[i];
        ino.synced = ino.data.clone();
        ino.unsynced.clear();
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.st();
        if st.failing {
            return Err(err(io::ErrorKind::Other, "simulated failure"));
        }
        let i = Self::inode(&st, from)?;
        st.names.remove(from);
        st.names.insert(to.to_path_buf(), i);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        st.names
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| err(io::ErrorKind::NotFound, "no such file"))
    }
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.st();
        st.dirs.retain(|d| d != dir);
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.st();
        if st.failing {
            return Err(err(io::ErrorKind::Other, "simulated sync failure"));
        }
        st.syncs += 1;
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        let now: Vec<(PathBuf, usize)> = st
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        st.durable.retain(|p, _| !in_dir(p));
        st.durable.extend(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_cut_keeps_only_synced() {
        let fs = SimFs::new(1);
        let d = Path::new("/s");
        let a = d.join("a");
        fs.create_dir_all(d).unwrap();
        fs.create(&a).unwrap();
        fs.write_at(&a, 0, b"hello").unwrap();
        fs.power_cut(false);
        assert!(!fs.exists(&a), "creation not durable without a dir sync");
        fs.create(&a).unwrap();
        fs.sync_dir(d).unwrap();
        fs.write_at(&a, 0, b"hello").unwrap();
        fs.sync_data(&a).unwrap();
        fs.write_at(&a, 5, b" world").unwrap();
        assert_eq!(fs.read_all(&a).unwrap(), b"hello world");
        fs.power_cut(false);
        assert_eq!(fs.read_all(&a).unwrap(), b"hello");
        fs.write_at(&a, 5, b" world").unwrap();
        fs.power_cut(true);
        let got = fs.read_all(&a).unwrap();
        assert!(got.starts_with(b"hello") && b"hello world".starts_with(&got[..]));
        assert!(fs.flip_bit(&a, 0));
        assert_eq!(fs.read_all(&a).unwrap()[0], b'h' ^ 1);
    }

    #[test]
    fn rename_needs_dir_sync() {
        let fs = SimFs::new(2);
        let d = Path::new("/d");
        fs.create_dir_all(d).unwrap();
        fs.create(&d.join("t")).unwrap();
        fs.sync_dir(d).unwrap();
        fs.rename(&d.join("t"), &d.join("m")).unwrap();
        fs.power_cut(false);
        assert!(fs.exists(&d.join("t")) && !fs.exists(&d.join("m")));
    }

    #[test]
    fn real_fs_round_trip() {
        let dir = std::env::temp_dir().join(format!("natrium-fs-{}", std::process::id()));
        let fs = RealFs::new();
        fs.create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        fs.create(&p).unwrap();
        assert_eq!(fs.append(&p, b"abc").unwrap(), 0);
        assert_eq!(fs.append(&p, b"def").unwrap(), 3);
        fs.sync_data(&p).unwrap();
        fs.sync_dir(&dir).unwrap();
        let mut b = [0u8; 4];
        assert_eq!(fs.read_at(&p, 2, &mut b).unwrap(), 4);
        assert_eq!(&b, b"cdef");
        fs.rename(&p, &dir.join("g")).unwrap();
        assert_eq!(fs.list_dir(&dir).unwrap(), vec!["g".to_string()]);
        fs.remove(&dir.join("g")).unwrap();
        fs.remove_dir(&dir).unwrap();
    }
}
