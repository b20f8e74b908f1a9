//! Stable sorting through one instantiation of the standard library's sort.
//!
//! `slice::sort_by` is instantiated once per element type and comparison closure (each
//! copy a few KB of wasm, about twenty of them before): here every caller sorts indexes
//! through a `dyn` comparison instead, and the items are then moved into that order.
//! Same result as `sort_by`: stable, O(n log n).

use std::cmp::Ordering;

/// The indexes `0..len`, stably sorted by `compare` over them.
pub fn stable_indexes(len: usize, compare: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if len > 1 {
        order.sort_by(|&a, &b| compare(a, b));
    }
    order
}

/// `items.sort_by(compare)`, stable.
pub fn sort_by<T>(items: &mut Vec<T>, mut compare: impl FnMut(&T, &T) -> Ordering) {
    if items.len() < 2 {
        return;
    }
    let order = {
        let items: &[T] = items;
        stable_indexes(items.len(), &mut |a, b| compare(&items[a], &items[b]))
    };
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.iter().filter_map(|&i| slots[i].take()));
}

/// `items.sort_by_key(key)`, stable.
pub fn sort_by_key<T, K: Ord>(items: &mut Vec<T>, mut key: impl FnMut(&T) -> K) {
    sort_by(items, |a, b| key(a).cmp(&key(b)));
}

/// `items.sort()`, stable.
pub fn sort<T: Ord>(items: &mut Vec<T>) {
    sort_by(items, T::cmp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably_like_the_standard_sort() {
        let mut items: Vec<(u8, usize)> = [3, 1, 2, 1, 3, 0, 2, 1].iter().copied().zip(0..).collect();
        let mut expected = items.clone();
        expected.sort_by_key(|(k, _)| *k);
        sort_by_key(&mut items, |(k, _)| *k);
        assert_eq!(items, expected);
    }

    #[test]
    fn indexes_of_equal_items_keep_their_order() {
        let keys = [2.0, 1.0, 2.0, f64::INFINITY, 1.0];
        let order = stable_indexes(keys.len(), &mut |a, b| keys[a].total_cmp(&keys[b]));
        assert_eq!(order, vec![1, 4, 0, 2, 3]);
        assert_eq!(stable_indexes(0, &mut |_, _| Ordering::Equal), Vec::<usize>::new());
    }

    #[test]
    fn sorts_strings() {
        let mut words: Vec<String> = ["b", "a", "c", "a"].iter().map(|s| s.to_string()).collect();
        sort(&mut words);
        assert_eq!(words, ["a", "a", "b", "c"]);
    }
}
