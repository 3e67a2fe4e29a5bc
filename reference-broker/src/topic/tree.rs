//! A subscription trie: topic filters split by level, so matching a topic name visits only the
//! branches that can match instead of scanning every filter.

use std::collections::HashMap;
use std::hash::Hash;

/// The most levels a topic name or filter may have in the broker (as Mosquitto's
/// `TOPIC_HIERARCHY_LIMIT`): the tree is walked recursively, so its depth must stay bounded
/// whatever a client sends.
pub const MAX_TOPIC_LEVELS: usize = 200;

/// True when `topic` (name or filter) has more than [`MAX_TOPIC_LEVELS`] levels.
pub fn too_deep(topic: &str) -> bool {
    topic.bytes().filter(|b| *b == b'/').count() >= MAX_TOPIC_LEVELS
}

/// Maps topic filters to values keyed by subscriber; `K` identifies the subscriber (one value per
/// subscriber and filter), `V` is what the subscription carries (options, identifiers).
#[derive(Debug)]
pub struct SubscriptionTree<K, V> {
    root: Node<K, V>,
    len: usize,
}

#[derive(Debug)]
struct Node<K, V> {
    children: HashMap<Box<str>, Node<K, V>>,
    values: HashMap<K, V>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            values: HashMap::new(),
        }
    }
}

impl<K, V> Default for SubscriptionTree<K, V> {
    fn default() -> Self {
        SubscriptionTree {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, V> SubscriptionTree<K, V> {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of (filter, key) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no subscription.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Insert or replace the value of `key` under `filter`; returns the previous value.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let old = node.values.insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// The value of `key` under exactly `filter`.
    pub fn get(&self, filter: &str, key: &K) -> Option<&V> {
        let mut node = &self.root;
        for level in filter.split('/') {
            node = node.children.get(level)?;
        }
        node.values.get(key)
    }

    /// Remove the value of `key` under `filter`, pruning branches left empty.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = Self::remove_at(&mut self.root, &levels, key);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    fn remove_at(node: &mut Node<K, V>, levels: &[&str], key: &K) -> Option<V> {
        let Some((first, rest)) = levels.split_first() else {
            return node.values.remove(key);
        };
        let child = node.children.get_mut(*first)?;
        let removed = Self::remove_at(child, rest, key);
        if child.values.is_empty() && child.children.is_empty() {
            node.children.remove(*first);
        }
        removed
    }

    /// Call `f` for every subscription whose filter matches the topic name `topic`.
    pub fn for_each_match<'a>(&'a self, topic: &str, mut f: impl FnMut(&'a K, &'a V)) {
        let levels: Vec<&str> = topic.split('/').collect();
        // [MQTT-4.7.2-1] wildcards in the first level do not match topics starting with `$`.
        let dollar = topic.starts_with('$');
        Self::walk(&self.root, &levels, !dollar, &mut f);
    }

    fn walk<'a>(
        node: &'a Node<K, V>,
        levels: &[&str],
        wildcards: bool,
        f: &mut impl FnMut(&'a K, &'a V),
    ) {
        if wildcards {
            // [MQTT-4.7.1-2] `#` matches the parent level and every level below it.
            if let Some(hash) = node.children.get("#") {
                hash.values.iter().for_each(|(k, v)| f(k, v));
            }
        }
        let Some((first, rest)) = levels.split_first() else {
            node.values.iter().for_each(|(k, v)| f(k, v));
            return;
        };
        if let Some(child) = node.children.get(*first) {
            Self::walk(child, rest, true, f);
        }
        if wildcards {
            // [MQTT-4.7.1-3] `+` matches exactly one level.
            if let Some(plus) = node.children.get("+") {
                Self::walk(plus, rest, true, f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::matches;

    fn matched(tree: &SubscriptionTree<u32, &'static str>, topic: &str) -> Vec<u32> {
        let mut out = Vec::new();
        tree.for_each_match(topic, |k, _| out.push(*k));
        out.sort();
        out
    }

    #[test]
    fn depth_limit() {
        assert!(!too_deep(
            &"a/".repeat(MAX_TOPIC_LEVELS - 1)[..2 * MAX_TOPIC_LEVELS - 3]
        ));
        assert!(too_deep(&"/".repeat(MAX_TOPIC_LEVELS)));
    }

    #[test]
    fn insert_match_remove() {
        let mut t = SubscriptionTree::new();
        assert!(t.insert("a/b", 1, "x").is_none());
        assert!(t.insert("a/+", 2, "y").is_none());
        assert!(t.insert("a/#", 3, "z").is_none());
        assert!(t.insert("#", 4, "w").is_none());
        assert_eq!(t.insert("a/b", 1, "x2"), Some("x"));
        assert_eq!(t.len(), 4);
        assert_eq!(matched(&t, "a/b"), vec![1, 2, 3, 4]);
        assert_eq!(matched(&t, "a"), vec![3, 4]);
        assert_eq!(matched(&t, "a/b/c"), vec![3, 4]);
        assert_eq!(matched(&t, "$SYS/a"), Vec::<u32>::new());
        assert_eq!(t.remove("a/#", &3), Some("z"));
        assert_eq!(t.remove("a/#", &3), None);
        assert_eq!(matched(&t, "a"), vec![4]);
        assert_eq!(t.get("a/b", &1), Some(&"x2"));
        t.remove("a/b", &1);
        t.remove("a/+", &2);
        t.remove("#", &4);
        assert!(t.is_empty());
        assert!(t.root.children.is_empty(), "empty branches are pruned");
    }

    #[test]
    fn tree_agrees_with_matcher() {
        let filters = [
            "#", "+", "+/+", "a", "a/#", "a/+", "a/+/c", "+/b/#", "/+", "$SYS/#", "$SYS/+", "a//c",
        ];
        let topics = [
            "a", "a/b", "a/b/c", "/a", "a//c", "$SYS/x", "$SYS", "b/b/b", "",
        ];
        let mut t = SubscriptionTree::new();
        for (i, f) in filters.iter().enumerate() {
            t.insert(f, i as u32, "v");
        }
        for topic in topics {
            let expected: Vec<u32> = filters
                .iter()
                .enumerate()
                .filter(|(_, f)| matches(f, topic))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(matched(&t, topic), expected, "topic {topic:?}");
        }
    }
}
