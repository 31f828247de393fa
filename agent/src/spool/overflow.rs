//! The spool's memory overflow: reports the disk refused (full, read-only),
//! held in order behind the ones on disk within a byte budget
//! (`spool_memory_max`) until the disk takes them back or the collector
//! acknowledges them.
//!
//! Each report keeps the counter it was given when it was made, so writing
//! it back to disk later puts it exactly where it belongs in the file order.

use std::collections::VecDeque;

/// One report held in memory: its spool counter and encoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Held {
    pub(super) counter: u64,
    pub(super) body: Vec<u8>,
}

/// Reports held in memory, oldest first, within a byte budget.
#[derive(Debug)]
pub(super) struct Overflow {
    max: u64,
    held: VecDeque<Held>,
    bytes: u64,
}

impl Overflow {
    /// An empty overflow of at most `max` bytes (0: none).
    pub(super) fn new(max: u64) -> Self {
        Self {
            max,
            held: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Holds `body` when it fits in the budget; gives it back when not.
    pub(super) fn push(&mut self, counter: u64, body: Vec<u8>) -> Result<(), Vec<u8>> {
        let len = body.len() as u64;
        if self.bytes + len > self.max {
            return Err(body);
        }
        self.bytes += len;
        self.held.push_back(Held { counter, body });
        Ok(())
    }

    /// The oldest report held.
    pub(super) fn front(&self) -> Option<&Held> {
        self.held.front()
    }

    /// Takes the oldest report out.
    pub(super) fn pop_front(&mut self) -> Option<Held> {
        let held = self.held.pop_front()?;
        self.bytes -= held.body.len() as u64;
        Some(held)
    }

    /// Reports held.
    pub(super) fn len(&self) -> usize {
        self.held.len()
    }

    /// True when nothing is held.
    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Bytes held.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_in_order_within_the_budget() {
        let mut overflow = Overflow::new(10);
        overflow.push(1, vec![0; 4]).unwrap();
        overflow.push(2, vec![0; 6]).unwrap();
        assert_eq!(overflow.push(3, vec![0; 1]), Err(vec![0]));
        assert_eq!((overflow.len(), overflow.bytes()), (2, 10));
        assert_eq!(overflow.pop_front().map(|h| h.counter), Some(1));
        overflow.push(3, vec![0; 4]).unwrap();
        let order: Vec<u64> = std::iter::from_fn(|| overflow.pop_front())
            .map(|h| h.counter)
            .collect();
        assert_eq!(order, [2, 3]);
        assert!(overflow.is_empty());
        assert_eq!(overflow.bytes(), 0);
    }

    #[test]
    fn a_zero_budget_holds_nothing() {
        let mut overflow = Overflow::new(0);
        assert!(overflow.push(1, vec![0]).is_err());
        assert!(overflow.front().is_none());
    }
}
