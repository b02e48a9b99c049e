//! Lazy reads of snapshot files through a bounded disk cache (the shell
//! around [`crate::core::lazy`]): [`DiskCache`] keeps verified chunks in a
//! folder shared by every snapshot of a repository, [`LazyFile`] reads byte
//! ranges of one snapshot file through it, and [`CacheFolder`] lets a
//! restore take the chunks a cache folder holds.

mod cache_entry;
mod cache_folder;
mod cache_writer;
mod disk_cache;
mod lazy_file;

pub use cache_folder::CacheFolder;
pub use disk_cache::DiskCache;
pub use lazy_file::LazyFile;
