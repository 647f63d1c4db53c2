//! Interned names: namespaces, pods, nodes, products and cost centers as small integers.
//!
//! A month of a large fleet is over a million allocations sharing a few thousand distinct
//! names. Interning them makes an allocation a small `Copy`-friendly record and lets the cost
//! engine group by integer keys instead of hashing strings.

use rustc_hash::FxHashMap;

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

/// A string interner.
#[derive(Clone, Debug)]
pub struct Names {
    index: FxHashMap<Box<str>, Sym>,
    strings: Vec<Box<str>>,
}

impl Default for Names {
    fn default() -> Self {
        let mut names = Names {
            index: FxHashMap::default(),
            strings: Vec::new(),
        };
        names.intern("");
        names
    }
}

impl Names {
    /// The symbol for `text`, adding it if new.
    pub fn intern(&mut self, text: &str) -> Sym {
        if let Some(&sym) = self.index.get(text) {
            return sym;
        }
        let sym = Sym(u32::try_from(self.strings.len()).expect("fewer than 2^32 distinct names"));
        self.strings.push(text.into());
        self.index.insert(text.into(), sym);
        sym
    }

    /// The symbol for `text` if it was interned.
    pub fn get(&self, text: &str) -> Option<Sym> {
        self.index.get(text).copied()
    }

    /// The text of a symbol.
    pub fn resolve(&self, sym: Sym) -> &str {
        &self.strings[sym.index()]
    }

    /// How many distinct names there are (symbols are `0..len`).
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Never true: the empty string is always present.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}
