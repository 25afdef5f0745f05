//! Read access to a repository tree: a directory, a tree in memory, and
//! the streamed SHA-256 of a file.

use super::*;

/// Read access to a repository tree (a directory, or a patched copy).
/// Implementations are shared between threads.
pub trait Source: Sync {
    /// Reads the file at `path` (components relative to the repository).
    /// Used for the small signed files.
    fn read(&self, path: &[String]) -> io::Result<Vec<u8>>;
    /// Lists a directory: (name, is_dir), in the order the file system
    /// returns them.
    fn list(&self, path: &[String]) -> io::Result<Vec<(String, bool)>>;
    /// Opens the file at `path` for streaming (used to hash package files
    /// without holding them in memory). The default reads the whole file.
    fn open(&self, path: &[String]) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(io::Cursor::new(self.read(path)?)))
    }
}

/// A repository held in memory: path components → file bytes.
#[derive(Debug, Default, Clone)]
pub struct MemSource(pub std::collections::BTreeMap<Vec<String>, Vec<u8>>);

impl Source for MemSource {
    fn read(&self, path: &[String]) -> io::Result<Vec<u8>> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.join("/")))
    }
    fn list(&self, path: &[String]) -> io::Result<Vec<(String, bool)>> {
        let mut out: Vec<(String, bool)> = Vec::new();
        for k in self.0.keys() {
            if k.len() > path.len() && k.starts_with(path) {
                let e = (k[path.len()].clone(), k.len() > path.len() + 1);
                if out.last() != Some(&e) {
                    out.push(e);
                }
            }
        }
        if out.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, path.join("/")));
        }
        Ok(out)
    }
}

/// A repository in a directory.
pub struct DirSource(pub std::path::PathBuf);

impl DirSource {
    fn full(&self, path: &[String]) -> std::path::PathBuf {
        let mut p = self.0.clone();
        for c in path {
            p.push(c);
        }
        p
    }
}

impl Source for DirSource {
    fn read(&self, path: &[String]) -> io::Result<Vec<u8>> {
        let mut f = open_regular(&self.full(path))?;
        let mut out = Vec::new();
        f.read_to_end(&mut out)?;
        Ok(out)
    }
    fn list(&self, path: &[String]) -> io::Result<Vec<(String, bool)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.full(path))? {
            let e = e?;
            let name = e.file_name().into_string().map_err(|n| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file name {n:?} is not UTF-8"),
                )
            })?;
            // follow symlinks as conex does (stat, not lstat); anything
            // but a regular file or a directory (a FIFO, a socket, a
            // device, a dangling link) makes the listing fail, as conex's
            // does: it is never opened
            let ft = e.file_type()?;
            let ft = if ft.is_symlink() {
                std::fs::metadata(e.path())?.file_type()
            } else {
                ft
            };
            if !ft.is_dir() && !ft.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{name} is not a regular file or a directory"),
                ));
            }
            out.push((name, ft.is_dir()));
        }
        Ok(out)
    }
    fn open(&self, path: &[String]) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(open_regular(&self.full(path))?))
    }
}

/// Opens a regular file for reading, never blocking: the file is opened
/// with `O_NONBLOCK` (a FIFO does not wait for a writer) and refused unless
/// it is a regular file (following symbolic links).
fn open_regular(p: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok(f)
}

/// SHA-256 (conex form) and size of a file, streamed from `src` in
/// fixed-size chunks.
pub fn hash_file(src: &dyn Source, path: &[String]) -> io::Result<(Digest, u64)> {
    let mut r = src.open(path)?;
    hash_reader(&mut r)
}

/// SHA-256 (conex form) and size of everything `r` yields.
pub fn hash_reader(r: &mut dyn Read) -> io::Result<(Digest, u64)> {
    let mut h = Sha256::new();
    let mut buf = [0u8; 32 * 1024];
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((
        Digest {
            alg: "sha256".into(),
            data: hex::encode(h.finalize()),
        },
        size,
    ))
}
