//! Process-wide SQLite settings, installed once before SQLite is first used.
//! The only unsafe code of the workspace.
//!
//! # Contract
//!
//! [`tune_sqlite`] calls `sqlite3_config`, which SQLite documents as not
//! thread-safe: no other thread may call into SQLite — through this
//! library, sqlx, rusqlite or anything else linked into the process — while
//! it runs, and the settings are taken only before SQLite initialises. A
//! library cannot know that of its process, so the function is `unsafe` and
//! opt-in (decision D66): the caller promises it runs before anything else
//! in the process uses SQLite, and before any thread that might is started.
//! The CLI calls it first thing in `main`. Called late, it changes nothing
//! and says so in its result; never called, every behaviour is the same and
//! only large stores commit more slowly (decisions D29, D66).
//!
//! What it installs:
//!
//! - **Memory statistics off.** With them on, every SQLite allocation takes a
//!   process-wide mutex to keep counters nobody here reads.
//! - **A page cache that skips needless truncation.** SQLite's default page
//!   cache remembers the highest page number it ever held. When a B-tree
//!   rebalance reorders sibling pages it parks one, for an instant, under a
//!   page number past the 1 GiB mark; from then on, at the end of each
//!   transaction, "drop the pages past the end of the database" scans the
//!   cache's whole hash table, a cost that grows with the cache's fill. The
//!   wrapper forwards every call to the default cache and keeps its own upper
//!   bound of the page numbers present; a truncation that cannot remove a
//!   page is not forwarded.

#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;

use rusqlite::ffi;

/// What [`tune_sqlite`] installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteTuning {
    /// The page-cache wrapper is in place.
    pub page_cache: bool,
    /// Memory statistics are off.
    pub memstatus_off: bool,
}

/// Installs the process-wide SQLite settings, once (see the module's
/// contract). Once SQLite is in use it can no longer be configured; then
/// nothing is changed and the result says so. Later calls return the first
/// call's result.
///
/// # Safety
///
/// No other thread may be using SQLite, by any library, while this runs:
/// call it at the start of `main`, before starting threads or opening any
/// database.
pub unsafe fn tune_sqlite() -> SqliteTuning {
    static DONE: OnceLock<SqliteTuning> = OnceLock::new();
    *DONE.get_or_init(|| {
        // SAFETY: `install` only calls `sqlite3_config`, which refuses (with
        // SQLITE_MISUSE) once SQLite is initialised; the caller promises
        // that nothing else calls into SQLite meanwhile.
        unsafe { install() }
    })
}

/// The default page cache's methods, which the wrapper forwards to: every
/// one present, checked once at install.
struct Forward {
    arg: *mut c_void,
    init: unsafe extern "C" fn(*mut c_void) -> c_int,
    shutdown: unsafe extern "C" fn(*mut c_void),
    create: unsafe extern "C" fn(c_int, c_int, c_int) -> *mut ffi::sqlite3_pcache,
    cachesize: unsafe extern "C" fn(*mut ffi::sqlite3_pcache, c_int),
    pagecount: unsafe extern "C" fn(*mut ffi::sqlite3_pcache) -> c_int,
    fetch: unsafe extern "C" fn(
        *mut ffi::sqlite3_pcache,
        c_uint,
        c_int,
    ) -> *mut ffi::sqlite3_pcache_page,
    unpin: unsafe extern "C" fn(*mut ffi::sqlite3_pcache, *mut ffi::sqlite3_pcache_page, c_int),
    rekey: unsafe extern "C" fn(
        *mut ffi::sqlite3_pcache,
        *mut ffi::sqlite3_pcache_page,
        c_uint,
        c_uint,
    ),
    truncate: unsafe extern "C" fn(*mut ffi::sqlite3_pcache, c_uint),
    destroy: unsafe extern "C" fn(*mut ffi::sqlite3_pcache),
    shrink: unsafe extern "C" fn(*mut ffi::sqlite3_pcache),
}

impl Forward {
    fn of(m: &ffi::sqlite3_pcache_methods2) -> Option<Self> {
        Some(Self {
            arg: m.pArg,
            init: m.xInit?,
            shutdown: m.xShutdown?,
            create: m.xCreate?,
            cachesize: m.xCachesize?,
            pagecount: m.xPagecount?,
            fetch: m.xFetch?,
            unpin: m.xUnpin?,
            rekey: m.xRekey?,
            truncate: m.xTruncate?,
            destroy: m.xDestroy?,
            shrink: m.xShrink?,
        })
    }
}

// SAFETY: plain function pointers and SQLite's own `pArg`, written once
// before the wrapper is installed and only read afterwards.
unsafe impl Sync for Forward {}
unsafe impl Send for Forward {}

static FORWARD: OnceLock<Forward> = OnceLock::new();

unsafe fn install() -> SqliteTuning {
    let memstatus_off =
        unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) } == ffi::SQLITE_OK;

    // SAFETY: every field is an integer, a pointer or an `Option` of a
    // function pointer, for all of which zero is a valid value.
    let mut default: ffi::sqlite3_pcache_methods2 = unsafe { std::mem::zeroed() };
    let got = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_GETPCACHE2,
            &mut default as *mut ffi::sqlite3_pcache_methods2,
        )
    };
    let recorded =
        got == ffi::SQLITE_OK && Forward::of(&default).is_some_and(|f| FORWARD.set(f).is_ok());
    if !recorded {
        return SqliteTuning {
            page_cache: false,
            memstatus_off,
        };
    }
    let wrapper = ffi::sqlite3_pcache_methods2 {
        iVersion: 1,
        pArg: std::ptr::null_mut(),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        xCreate: Some(x_create),
        xCachesize: Some(x_cachesize),
        xPagecount: Some(x_pagecount),
        xFetch: Some(x_fetch),
        xUnpin: Some(x_unpin),
        xRekey: Some(x_rekey),
        xTruncate: Some(x_truncate),
        xDestroy: Some(x_destroy),
        xShrink: Some(x_shrink),
    };
    // SQLite copies the struct, so a local is enough.
    let page_cache = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_PCACHE2,
            &wrapper as *const ffi::sqlite3_pcache_methods2,
        )
    } == ffi::SQLITE_OK;
    SqliteTuning {
        page_cache,
        memstatus_off,
    }
}

/// The page-number bookkeeping of one wrapped cache.
///
/// Invariant: every page the inner cache holds has a key `<= bound()`. Pages
/// get keys only from `xFetch` and `xRekey`, and both update the bound; pages
/// the inner cache drops on its own only make the bound loose, never wrong.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Keys {
    /// The highest key fetched (or rekeyed to in the ordinary way).
    max: c_uint,
    /// A key above `max` that a page was rekeyed to, 0 when none: the
    /// rebalance's temporary number, left again by the next rekey.
    parked: c_uint,
}

impl Keys {
    fn bound(self) -> c_uint {
        self.max.max(self.parked)
    }

    fn fetched(&mut self, key: c_uint) {
        self.max = self.max.max(key);
    }

    fn rekeyed(&mut self, old: c_uint, new: c_uint) {
        if self.parked != 0 && old == self.parked {
            // Keys are unique within a cache: nothing is at `parked` now.
            self.parked = 0;
        }
        if new > self.max {
            // Only one key is tracked as parked; an earlier one folds into `max`.
            self.max = self.max.max(self.parked);
            self.parked = if new > self.max { new } else { 0 };
        }
    }

    /// Whether a truncation at `limit` (drop keys `>= limit`) can remove a
    /// page; if it can, the bookkeeping after it is forwarded.
    fn truncate(&mut self, limit: c_uint) -> bool {
        if limit > self.bound() {
            return false;
        }
        self.max = self.max.min(limit.saturating_sub(1));
        if self.parked >= limit {
            self.parked = 0;
        }
        true
    }
}

struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    keys: Keys,
}

fn inner() -> &'static Forward {
    // Set before the wrapper is installed, so always present when called.
    FORWARD
        .get()
        .expect("the default page cache is recorded before the wrapper")
}

/// The wrapper state behind SQLite's opaque cache handle.
///
/// SAFETY (for callers): `p` came from `x_create` and has not been destroyed;
/// SQLite calls one cache's methods from one connection at a time.
unsafe fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a mut Cache {
    unsafe { &mut *(p as *mut Cache) }
}

unsafe extern "C" fn x_init(_arg: *mut c_void) -> c_int {
    let d = inner();
    unsafe { (d.init)(d.arg) }
}

unsafe extern "C" fn x_shutdown(_arg: *mut c_void) {
    let d = inner();
    unsafe { (d.shutdown)(d.arg) }
}

unsafe extern "C" fn x_create(
    sz_page: c_int,
    sz_extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    let inner = unsafe { (inner().create)(sz_page, sz_extra, purgeable) };
    if inner.is_null() {
        return std::ptr::null_mut();
    }
    Box::into_raw(Box::new(Cache {
        inner,
        keys: Keys::default(),
    })) as *mut ffi::sqlite3_pcache
}

unsafe extern "C" fn x_cachesize(p: *mut ffi::sqlite3_pcache, n: c_int) {
    let c = unsafe { cache(p) };
    unsafe { (inner().cachesize)(c.inner, n) }
}

unsafe extern "C" fn x_pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    let c = unsafe { cache(p) };
    unsafe { (inner().pagecount)(c.inner) }
}

unsafe extern "C" fn x_fetch(
    p: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    let c = unsafe { cache(p) };
    let page = unsafe { (inner().fetch)(c.inner, key, create) };
    if !page.is_null() {
        c.keys.fetched(key);
    }
    page
}

unsafe extern "C" fn x_unpin(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    let c = unsafe { cache(p) };
    unsafe { (inner().unpin)(c.inner, page, discard) }
}

unsafe extern "C" fn x_rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    let c = unsafe { cache(p) };
    unsafe { (inner().rekey)(c.inner, page, old, new) };
    c.keys.rekeyed(old, new);
}

unsafe extern "C" fn x_truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    let c = unsafe { cache(p) };
    if c.keys.truncate(limit) {
        unsafe { (inner().truncate)(c.inner, limit) }
    }
}

unsafe extern "C" fn x_destroy(p: *mut ffi::sqlite3_pcache) {
    let c = unsafe { Box::from_raw(p as *mut Cache) };
    unsafe { (inner().destroy)(c.inner) }
}

unsafe extern "C" fn x_shrink(p: *mut ffi::sqlite3_pcache) {
    let c = unsafe { cache(p) };
    unsafe { (inner().shrink)(c.inner) }
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn a_rebalance_swap_leaves_the_bound_where_it_was() {
        let mut k = Keys::default();
        for key in [3, 7, 12] {
            k.fetched(key);
        }
        // balance_nonroot: A(7) -> temp, B(3) -> 7, A(temp) -> 3.
        k.rekeyed(7, 262_145);
        assert_eq!(k.bound(), 262_145);
        k.rekeyed(3, 7);
        k.rekeyed(262_145, 3);
        assert_eq!(k.bound(), 12);
        assert!(!k.truncate(13), "nothing at or past 13 can be cached");
        assert!(k.truncate(12), "page 12 may be cached");
        assert_eq!(k.bound(), 11);
    }

    #[test]
    fn a_page_left_at_a_high_key_keeps_truncation_forwarded() {
        let mut k = Keys::default();
        k.fetched(10);
        k.rekeyed(10, 500);
        k.rekeyed(4, 600); // a second high key: 500 folds into max
        assert_eq!(k.bound(), 600);
        k.rekeyed(600, 5);
        assert_eq!(k.bound(), 500, "the page at 500 is still there");
        assert!(k.truncate(11));
        assert_eq!(k.bound(), 10);
        assert!(!k.truncate(11));
    }

    #[test]
    fn an_empty_cache_is_never_truncated() {
        let mut k = Keys::default();
        assert!(!k.truncate(1));
        assert!(
            k.truncate(0),
            "truncate(0) is forwarded: it clears the cache"
        );
    }
}
