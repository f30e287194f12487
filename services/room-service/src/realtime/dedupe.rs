//! A bounded window of recently seen event ids: Kafka delivers at least once (a retry, a rebalance), and a
//! socket must not see the same push twice.

use std::collections::{HashSet, VecDeque};

use uuid::Uuid;

/// The last `capacity` distinct ids.
#[derive(Debug)]
pub struct RecentIds {
    capacity: usize,
    seen: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

impl RecentIds {
    /// A window of `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: HashSet::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
        }
    }

    /// Record `id`; `true` the first time it is seen within the window.
    pub fn first_time(&mut self, id: Uuid) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }

    /// Ids in the window.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_new_once_and_old_ids_leave_the_window() {
        let mut recent = RecentIds::new(3);
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        assert!(recent.first_time(ids[0]));
        assert!(!recent.first_time(ids[0]));
        assert!(recent.first_time(ids[1]));
        assert!(recent.first_time(ids[2]));
        assert!(recent.first_time(ids[3]));
        assert_eq!(recent.len(), 3);
        assert!(recent.first_time(ids[0]), "evicted, so new again");
        assert!(!recent.first_time(ids[3]));
    }
}
