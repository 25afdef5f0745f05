//! Read access to a repository tree: a directory, a tree in memory, and
//! the streamed SHA-256 of a file.

use super::*;

/// Read access to a repository tree (a directory, or a patched copy).
/// Implementations are shared between threads.
pub trait Source: Sync {
    /// Reads the file at `path` (components relative to the repository).
    /// Used for the small signed files.
    fn read(&self, path: &[String]) -> io::Result<Vec<u8>>;
    /// [`Source::read`], borrowed when the source holds the bytes (a
    /// patched file, read without a copy).
    fn read_cow(&self, path: &[String]) -> io::Result<std::borrow::Cow<'_, [u8]>> {
        self.read(path).map(std::borrow::Cow::Owned)
    }
    /// Lists a directory: (name, is_dir), in the order the file system
    /// returns them.
    fn list(&self, path: &[String]) -> io::Result<Vec<(String, bool)>>;
    /// Opens the file at `path` for streaming (used to hash package files
    /// without holding them in memory). The default reads the whole file.
    fn open(&self, path: &[String]) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(io::Cursor::new(self.read(path)?)))
    }
    /// Opens the directory at `path` as a [`DirHandle`] for walking, when
    /// the source is a directory on disk (`None`: walk with
    /// [`Source::list`] and [`Source::open`]).
    fn open_dir(&self, _path: &[String]) -> Option<io::Result<DirHandle>> {
        None
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
    fn open_dir(&self, path: &[String]) -> Option<io::Result<DirHandle>> {
        Some(DirHandle::open(rustix::fs::CWD, self.full(path)))
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

/// A directory on disk opened for walking: its subdirectories and files
/// are opened relative to it (one path component looked up, not the whole
/// path), and an entry's type comes from the listing itself unless it is a
/// symbolic link or the file system does not say. Listings, errors and the
/// files it opens are those of [`DirSource`]'s `list` and `open`.
pub struct DirHandle(rustix::fs::Dir);

impl DirHandle {
    fn open<P: rustix::path::Arg>(at: impl std::os::fd::AsFd, p: P) -> io::Result<DirHandle> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::openat(
            at,
            p,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(DirHandle(rustix::fs::Dir::new(fd)?))
    }

    /// Opens the subdirectory `name` (following a symbolic link).
    pub fn subdir(&self, name: &str) -> io::Result<DirHandle> {
        DirHandle::open(self.0.fd()?, name)
    }

    /// Lists the directory once, in the order the file system returns
    /// the entries; anything but a regular file or a directory (after
    /// following a symbolic link) makes the listing fail.
    pub fn list(&mut self) -> io::Result<Vec<(String, Listed)>> {
        use rustix::fs::FileType;
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::new();
        while let Some(e) = self.0.read() {
            let e = e?;
            let raw = e.file_name().to_bytes();
            if raw == b"." || raw == b".." {
                continue;
            }
            let name = std::ffi::OsStr::from_bytes(raw)
                .to_os_string()
                .into_string()
                .map_err(|n| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("file name {n:?} is not UTF-8"),
                    )
                })?;
            let (ft, linked) = match e.file_type() {
                FileType::Symlink | FileType::Unknown => {
                    let st = rustix::fs::statat(
                        self.0.fd()?,
                        e.file_name(),
                        rustix::fs::AtFlags::empty(),
                    )?;
                    (FileType::from_raw_mode(st.st_mode), true)
                }
                ft => (ft, false),
            };
            let listed = match ft {
                FileType::Directory => Listed::Dir,
                FileType::RegularFile => Listed::File { linked },
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{name} is not a regular file or a directory"),
                    ))
                }
            };
            out.push((name, listed));
        }
        Ok(out)
    }

    /// Opens `name`, never blocking (`O_NONBLOCK`: a FIFO does not wait
    /// for a writer), following a symbolic link only when `linked`.
    fn open_listed(&self, name: &str, linked: bool) -> io::Result<std::fs::File> {
        use rustix::fs::{Mode, OFlags};
        let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        if !linked {
            flags |= OFlags::NOFOLLOW;
        }
        let fd = rustix::fs::openat(self.0.fd()?, name, flags, Mode::empty())?;
        Ok(std::fs::File::from(fd))
    }

    /// The SHA-256 and size of the file `name` that [`Self::list`] listed
    /// as a regular file (`linked`: as [`Listed::File`] says).
    ///
    /// A file the listing saw as a regular file itself is opened without
    /// following a link, and its type is asked for only when it is longer
    /// than the read buffer: a regular file's read returns less than asked
    /// only at its end, so most files take one open, one read and one
    /// close. Whatever replaced such a file after the listing cannot make
    /// the read wait or go on for ever: a link is not followed, a FIFO is
    /// opened without blocking and, once it fills the buffer, refused as
    /// not a regular file (devices cannot be made without privileges). A
    /// file reached by way of a link is checked before it is read.
    pub fn sha256_file(&self, name: &str, linked: bool) -> io::Result<([u8; 32], u64)> {
        let mut f = self.open_listed(name, linked)?;
        if linked {
            check_regular(&f)?;
        }
        with_buffer(|buf| {
            let mut h = Sha256::new();
            let mut size = 0u64;
            let mut checked = linked;
            loop {
                let n = match f.read(buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                h.update(&buf[..n]);
                size += n as u64;
                if n < buf.len() {
                    break;
                }
                if !checked {
                    check_regular(&f)?;
                    checked = true;
                }
            }
            Ok((h.finalize().into(), size))
        })
    }
}

/// What a directory listing says an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listed {
    /// A directory (or a link to one).
    Dir,
    /// A regular file; `linked`: by way of a symbolic link, or of a type
    /// the listing did not give (then found with `stat`, which follows
    /// links).
    File {
        /// Reached by way of a symbolic link (or typed by `stat`).
        linked: bool,
    },
}

impl Listed {
    /// Whether the entry is a directory.
    pub fn is_dir(self) -> bool {
        self == Listed::Dir
    }
}

/// Refuses a file that is not a regular file.
fn check_regular(f: &std::fs::File) -> io::Result<()> {
    if f.metadata()?.is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ))
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
    check_regular(&f)?;
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
    sha256_reader(r).map(|(d, n)| (Digest::of_sha256(&d), n))
}

/// The raw SHA-256 and size of everything `r` yields, read through one
/// buffer per thread.
pub fn sha256_reader(r: &mut dyn Read) -> io::Result<([u8; 32], u64)> {
    with_buffer(|buf| hash_with(r, buf))
}

/// Runs `f` with this thread's read buffer (32 KiB).
fn with_buffer<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    thread_local! {
        /// One read buffer per thread: a walk hashes thousands of small
        /// files, and zeroing a fresh buffer for each cost more than
        /// reading most of them.
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|b| match b.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.is_empty() {
                buf.resize(32 * 1024, 0);
            }
            f(&mut buf)
        }
        Err(_) => f(&mut vec![0u8; 32 * 1024]),
    })
}

fn hash_with(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<([u8; 32], u64)> {
    let mut h = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = match r.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((h.finalize().into(), size))
}
