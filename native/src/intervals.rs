//! `streams/engine/intervals.py`, natively: the entries of one interval slot of a lead's
//! history index (a history filter whose `in past`s bound several attributes of the entry),
//! each as the interval `[start, end]` of the dates T at which the filter counts it, kept
//! as two sorted vectors; the count at T is `#{start <= T} - #{end < T}` (an interval that
//! ends before T starts before it). Only non-empty intervals are held. The derivation and
//! invariants are the Python module's (its docstring).

#[derive(Default)]
pub struct Intervals {
    starts: Vec<i64>,
    ends: Vec<i64>,
    /// Set by the index when an entry's attribute is neither empty nor an integer (a state
    /// written under an older catalog): the filter then scans, as the reference does.
    pub odd: bool,
}

fn insert(v: &mut Vec<i64>, x: i64) {
    if v.last().is_none_or(|last| *last <= x) {
        v.push(x);
    } else {
        let at = v.partition_point(|y| *y <= x);
        v.insert(at, x);
    }
}

fn remove(v: &mut Vec<i64>, x: i64) {
    let at = v.partition_point(|y| *y < x);
    if v.get(at) == Some(&x) {
        v.remove(at);
    }
}

impl Intervals {
    /// From non-empty `(start, end)` intervals in any order.
    pub fn new(intervals: &[(i64, i64)]) -> Intervals {
        let mut starts: Vec<i64> = intervals.iter().map(|i| i.0).collect();
        let mut ends: Vec<i64> = intervals.iter().map(|i| i.1).collect();
        starts.sort_unstable();
        ends.sort_unstable();
        Intervals { starts, ends, odd: false }
    }

    /// A non-empty interval.
    pub fn add(&mut self, start: i64, end: i64) {
        insert(&mut self.starts, start);
        insert(&mut self.ends, end);
    }

    /// An interval added before (one of them if several are equal).
    pub fn remove(&mut self, start: i64, end: i64) {
        remove(&mut self.starts, start);
        remove(&mut self.ends, end);
    }

    /// How many intervals contain `ts`.
    pub fn count(&self, ts: i64) -> usize {
        self.starts.partition_point(|s| *s <= ts) - self.ends.partition_point(|e| *e < ts)
    }

    /// (starts, ends), for the freshness check (tests).
    pub fn bounds(&self) -> (Vec<i64>, Vec<i64>) {
        (self.starts.clone(), self.ends.clone())
    }

    /// Whether the invariants hold (tests).
    pub fn check(&self) -> bool {
        self.starts.len() == self.ends.len()
            && self.starts.windows(2).all(|w| w[0] <= w[1])
            && self.ends.windows(2).all(|w| w[0] <= w[1])
            && self.starts.iter().zip(&self.ends).all(|(s, e)| s <= e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_brute_force() {
        let mut state: u64 = 11;
        let mut next = move |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) % n) as i64
        };
        let mut held = Intervals::default();
        let mut brute: Vec<(i64, i64)> = Vec::new();
        for step in 0..3000 {
            if next(4) == 0 && !brute.is_empty() {
                let (s, e) = brute.swap_remove(next(brute.len() as u64) as usize);
                held.remove(s, e);
            } else {
                let s = next(500);
                let e = s + next(80);
                held.add(s, e);
                brute.push((s, e));
            }
            let ts = next(600);
            let want = brute.iter().filter(|(s, e)| *s <= ts && ts <= *e).count();
            assert_eq!(held.count(ts), want, "step {step}");
            assert!(held.check(), "step {step}");
        }
    }
}
