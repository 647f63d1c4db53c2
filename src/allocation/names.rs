//! Interned names: namespaces, pods, nodes, products and cost centers as small integers.
//!
//! A month of a large fleet is over a million allocations sharing a few thousand distinct
//! names. Interning them makes an allocation a small `Copy`-friendly record and lets the cost
//! engine group by integer keys instead of hashing strings.

use std::sync::Arc;

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

/// A string interner. Cloning it is cheap: the table is shared until one of the copies adds a
/// name (copy on write), and each name is stored once, shared by the table's index and list.
#[derive(Clone, Debug)]
pub struct Names(Arc<Table>);

#[derive(Clone, Debug, Default)]
struct Table {
    index: FxHashMap<Arc<str>, Sym>,
    strings: Vec<Arc<str>>,
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
        if let Some(&sym) = self.0.index.get(text) {
            return sym;
        }
        let table = Arc::make_mut(&mut self.0);
        let sym = Sym(u32::try_from(table.strings.len()).expect("fewer than 2^32 distinct names"));
        let shared: Arc<str> = text.into();
        table.strings.push(shared.clone());
        table.index.insert(shared, sym);
        sym
    }

    /// The symbol for `text` if it was interned.
    pub fn get(&self, text: &str) -> Option<Sym> {
        self.0.index.get(text).copied()
    }

    /// The text of a symbol.
    pub fn resolve(&self, sym: Sym) -> &str {
        &self.0.strings[sym.index()]
    }

    /// How many distinct names there are (symbols are `0..len`).
    pub fn len(&self) -> usize {
        self.0.strings.len()
    }

    /// Never true: the empty string is always present.
    pub fn is_empty(&self) -> bool {
        self.0.strings.is_empty()
    }
}
