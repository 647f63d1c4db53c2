//! Interned names: namespaces, pods, nodes, products and cost centers as small integers.
//!
//! A month of a large fleet is over a million allocations sharing a few thousand distinct
//! names. Interning them makes an allocation a small `Copy`-friendly record and lets the cost
//! engine group by integer keys instead of hashing strings.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// An interned name; resolve it with [`Names::resolve`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Default)]
pub struct Sym(u32);

impl Sym {
    /// The empty string, interned in every table.
    pub const EMPTY: Sym = Sym(0);

    /// A symbol from an index previously taken with [`Sym::index`] from the same table.
    pub(crate) fn from_raw(index: u32) -> Sym {
        Sym(index)
    }

    /// The raw index, for use as a dense table key.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A string interner. Cloning it is cheap: the table is shared until one of the copies adds a
/// name (copy on write).
///
/// The texts lie side by side in one buffer, in the order they were first met, found by a
/// table of symbols hashed by their text: a name costs its bytes and some eighteen more, and
/// names interned together (a pod's name and UID) are read together.
#[derive(Clone, Debug)]
pub struct Names(Arc<Table>);

#[derive(Clone, Debug, Default)]
struct Table {
    /// Each symbol and the hash of its text, placed by the hash (kept: growing the table
    /// reads no text).
    index: HashTable<(Sym, u32)>,
    texts: Texts,
}

/// Texts side by side in one buffer, numbered in the order they were added.
#[derive(Clone, Debug, Default)]
pub(crate) struct Texts {
    texts: String,
    /// Where each text ends in `texts` (it starts where the one before ends).
    ends: Vec<usize>,
}

impl Texts {
    /// Adds `text`, numbered next.
    pub(crate) fn push(&mut self, text: &str) -> Sym {
        let sym = Sym(u32::try_from(self.ends.len()).expect("fewer than 2^32 distinct names"));
        self.texts.push_str(text);
        self.ends.push(self.texts.len());
        sym
    }

    /// The text numbered `sym`.
    pub(crate) fn get(&self, sym: Sym) -> &str {
        let at = sym.index();
        let start = at.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.texts[start..self.ends[at]]
    }

    /// Starts loading where `sym`'s text is said to end (a hint: nothing is read).
    pub(crate) fn warm_place(&self, sym: Sym) {
        if let Some(end) = self.ends.get(sym.index()) {
            crate::prefetch::prefetch(end);
        }
    }

    /// Starts loading `sym`'s text, reading where it lies (warmed by [`Texts::warm_place`]).
    pub(crate) fn warm_text(&self, sym: Sym) {
        let start = sym
            .index()
            .checked_sub(1)
            .map_or(0, |before| self.ends[before]);
        if let Some(byte) = self.texts.as_bytes().get(start) {
            crate::prefetch::prefetch(byte);
        }
    }

    /// How many texts there are.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Makes room for `count` more texts of `bytes` bytes in all.
    pub(crate) fn reserve(&mut self, count: usize, bytes: usize) {
        self.texts.reserve(bytes);
        self.ends.reserve(count);
    }
}

/// The hash of a text a table keeps: 32 bits.
fn hash(text: &str) -> u32 {
    let full = FxBuildHasher.hash_one(text);
    (full ^ (full >> 32)) as u32
}

/// Where a kept hash places a symbol: its bits spread over all 64 (the table reads the top
/// ones as well as the bottom).
fn placed(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Default for Names {
    fn default() -> Self {
        let mut names = Names(Arc::default());
        names.intern("");
        names
    }
}

impl Names {
    /// The symbol for `text`, adding it if new.
    pub fn intern(&mut self, text: &str) -> Sym {
        let hashed = hash(text);
        if let Some(sym) = self.find(text, hashed) {
            return sym;
        }
        let Table { index, texts } = Arc::make_mut(&mut self.0);
        let sym = texts.push(text);
        index.insert_unique(placed(hashed), (sym, hashed), |&(_, h)| placed(h));
        sym
    }

    /// The symbol for `text` if it was interned.
    pub fn get(&self, text: &str) -> Option<Sym> {
        self.find(text, hash(text))
    }

    fn find(&self, text: &str, hashed: u32) -> Option<Sym> {
        self.0
            .index
            .find(placed(hashed), |&(sym, h)| {
                h == hashed && self.0.texts.get(sym) == text
            })
            .map(|&(sym, _)| sym)
    }

    /// The text of a symbol.
    pub fn resolve(&self, sym: Sym) -> &str {
        self.0.texts.get(sym)
    }

    /// See [`Texts::warm_place`].
    pub(crate) fn warm_place(&self, sym: Sym) {
        self.0.texts.warm_place(sym);
    }

    /// See [`Texts::warm_text`].
    pub(crate) fn warm_text(&self, sym: Sym) {
        self.0.texts.warm_text(sym);
    }

    /// How many distinct names there are (symbols are `0..len`).
    pub fn len(&self) -> usize {
        self.0.texts.len()
    }

    /// Never true: the empty string is always present.
    pub fn is_empty(&self) -> bool {
        self.0.texts.len() == 0
    }
}
