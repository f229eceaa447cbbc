//! `streams/engine/dated_points.py`, natively: the points (date, value) of one ranged slot
//! of a lead's history index (a history filter whose `in past` bounds an attribute of the
//! entry), counted in `[lo, hi] × [a, b]` in polylogarithmic time. The layout, invariants
//! and costs are the Python module's (its docstring): `main`, a run sorted by (date, seq)
//! with a Fenwick tree of sorted values over its positions (node `i` holds the values of
//! positions `[i - lowbit(i), i)`, here stored end to end in one vector); late points in a
//! pile of at most `PILE_MAX`, spilled into static runs merged like a binary counter and
//! rebuilt into `main` once they hold as many live points; drops move a run's `base`
//! (dead positions cancel in a count's two prefixes) and rebuild once the dead outnumber
//! the live (and are at least `COMPACT_FROM`).

pub const PILE_MAX: usize = 16;
pub const COMPACT_FROM: usize = 64;

/// (date, seq, value).
type Point = (i64, u64, i64);

#[derive(Default)]
struct Run {
    dates: Vec<i64>,
    seqs: Vec<u64>,
    values: Vec<i64>,
    /// The nodes' sorted values end to end: node `i` (1-based) is `flat[ends[i-1]..ends[i]]`.
    flat: Vec<i64>,
    ends: Vec<usize>,
    base: usize,
}

impl Run {
    fn of(points: &[Point]) -> Run {
        let mut run = Run { ends: vec![0], ..Default::default() };
        for &(d, s, v) in points {
            run.append(d, s, v);
        }
        run
    }

    /// A point that sorts after every point of the run.
    fn append(&mut self, date: i64, seq: u64, value: i64) {
        if self.ends.is_empty() {
            self.ends.push(0);
        }
        self.dates.push(date);
        self.seqs.push(seq);
        self.values.push(value);
        let i = self.dates.len();
        let low = i - (i & i.wrapping_neg());
        let start = self.flat.len();
        self.flat.extend_from_slice(&self.values[low..i]);
        self.flat[start..].sort_unstable();
        self.ends.push(self.flat.len());
    }

    fn live(&self) -> usize {
        self.dates.len() - self.base
    }

    /// How many values of node `i` lie in `[a, b]` (`_within` of the Python module: the
    /// engine's `b` is T, usually above them all, and `a` above all of an old node's; else
    /// the values from `a` on are found galloping back from the end).
    fn in_node(&self, i: usize, a: i64, b: i64) -> usize {
        let node = &self.flat[self.ends[i - 1]..self.ends[i]];
        let last = node.len() - 1;
        if node[last] < a {
            return 0;
        }
        let high = if node[last] <= b { node.len() } else { node.partition_point(|v| *v <= b) };
        if high == 0 || node[0] >= a {
            return high;
        }
        let mut hi = high - 1;
        if node[hi] < a {
            return 0;
        }
        // node[hi] >= a > node[0]
        let mut step = 1;
        let mut lo = hi.saturating_sub(step);
        while lo > 0 && node[lo] >= a {
            hi = lo;
            step <<= 1;
            lo = hi.saturating_sub(step);
        }
        high - (lo + node[lo..hi].partition_point(|v| *v < a))
    }

    /// Live points with lo ≤ date ≤ hi and a ≤ value ≤ b (a ≤ b).
    fn count(&self, lo: i64, hi: i64, a: i64, b: i64) -> usize {
        let dates = &self.dates[self.base..];
        if dates.is_empty() {
            return 0;
        }
        // a run wholly inside the window (the common case) needs no bisection of its dates
        let mut p = self.base + if dates[0] >= lo { 0 } else { dates.partition_point(|d| *d < lo) };
        let mut q = self.base + if dates[dates.len() - 1] <= hi { dates.len() } else { dates.partition_point(|d| *d <= hi) };
        if q <= p {
            return 0;
        }
        let (mut plus, mut minus) = (0, 0);
        while q != p {
            if q > p {
                plus += self.in_node(q, a, b);
                q &= q - 1;
            } else {
                minus += self.in_node(p, a, b);
                p &= p - 1;
            }
        }
        plus - minus
    }

    fn points(&self) -> impl Iterator<Item = Point> + '_ {
        (self.base..self.dates.len()).map(|i| (self.dates[i], self.seqs[i], self.values[i]))
    }

    fn check(&self) -> bool {
        let n = self.dates.len();
        let sorted = (1..n).all(|i| (self.dates[i - 1], self.seqs[i - 1]) < (self.dates[i], self.seqs[i]));
        let nodes = (1..=n).all(|i| {
            let mut want = self.values[i - (i & i.wrapping_neg())..i].to_vec();
            want.sort_unstable();
            self.flat[self.ends[i - 1]..self.ends[i]] == want[..]
        });
        sorted && nodes && self.base <= n && self.seqs.len() == n && self.values.len() == n && self.ends.len() == n + 1
    }
}

#[derive(Default)]
pub struct DatedPoints {
    main: Run,
    runs: Vec<Run>,
    pile: Vec<Point>,
    seq: u64,
    /// Set by the index when an entry's attribute is neither empty nor an integer (a state
    /// written under an older catalog): the filter then scans, as the reference does.
    pub odd: bool,
}

impl DatedPoints {
    /// From `points` in any order (their seqs distinct and below `seq`).
    pub fn new(mut points: Vec<Point>, seq: u64) -> DatedPoints {
        points.sort_unstable();
        DatedPoints { main: Run::of(&points), runs: Vec::new(), pile: Vec::new(), seq, odd: false }
    }

    pub fn add(&mut self, date: i64, value: i64) {
        let seq = self.seq;
        self.seq += 1;
        if !self.main.dates.is_empty() && self.main.base == self.main.dates.len() {
            self.main = Run::of(&[]); // all dead: start afresh
        }
        if self.main.dates.last().is_none_or(|last| date >= *last) {
            self.main.append(date, seq, value);
            return;
        }
        self.pile.push((date, seq, value));
        if self.pile.len() > PILE_MAX {
            self.spill();
        }
    }

    fn spill(&mut self) {
        let mut points = std::mem::take(&mut self.pile);
        points.sort_unstable();
        while self.runs.last().is_some_and(|r| r.live() <= points.len()) {
            let run = self.runs.pop().expect("a run");
            points.extend(run.points());
            points.sort_unstable();
        }
        let in_runs: usize = self.runs.iter().map(Run::live).sum();
        if in_runs + points.len() >= self.main.live() {
            self.rebuild(points);
        } else {
            self.runs.push(Run::of(&points));
        }
    }

    fn rebuild(&mut self, mut points: Vec<Point>) {
        points.extend(self.main.points());
        points.append(&mut self.pile);
        for run in self.runs.drain(..) {
            points.extend(run.points());
        }
        points.sort_unstable();
        self.main = Run::of(&points);
    }

    /// Points with lo ≤ date ≤ hi and a ≤ value ≤ b.
    pub fn count(&self, lo: i64, hi: i64, a: i64, b: i64) -> usize {
        if a > b {
            return 0;
        }
        let mut n = self.main.count(lo, hi, a, b);
        for run in &self.runs {
            n += run.count(lo, hi, a, b);
        }
        n + self.pile.iter().filter(|(d, _, v)| lo <= *d && *d <= hi && a <= *v && *v <= b).count()
    }

    /// Drop the points dated before `horizon` (the retention).
    pub fn drop_before(&mut self, horizon: i64) {
        for run in std::iter::once(&mut self.main).chain(self.runs.iter_mut()) {
            run.base += run.dates[run.base..].partition_point(|d| *d < horizon);
        }
        self.pile.retain(|p| p.0 >= horizon);
        self.compact();
    }

    /// Drop the `k` points first in (date, seq) order (the bounds' trim).
    pub fn drop_first(&mut self, k: usize) {
        if k == 0 {
            return;
        }
        // (date, seq, run + 1; 0: the pile)
        let mut first: Vec<(i64, u64, usize)> = self.pile.iter().map(|p| (p.0, p.1, 0)).collect();
        for (r, run) in std::iter::once(&self.main).chain(self.runs.iter()).enumerate() {
            let stop = (run.base + k).min(run.dates.len());
            first.extend((run.base..stop).map(|i| (run.dates[i], run.seqs[i], r + 1)));
        }
        first.sort_unstable();
        first.truncate(k);
        let mut gone = Vec::new();
        for (_, seq, r) in first {
            match r {
                0 => gone.push(seq),
                1 => self.main.base += 1,
                r => self.runs[r - 2].base += 1,
            }
        }
        if !gone.is_empty() {
            self.pile.retain(|p| !gone.contains(&p.1));
        }
        self.compact();
    }

    fn compact(&mut self) {
        self.runs.retain(|r| r.live() > 0);
        let mut dead = self.main.dates.len() - self.main.live();
        let mut live = self.main.live() + self.pile.len();
        for run in &self.runs {
            dead += run.dates.len() - run.live();
            live += run.live();
        }
        if dead >= COMPACT_FROM && dead > live {
            self.rebuild(Vec::new());
        }
    }

    /// The live (date, value) pairs, sorted (tests).
    pub fn points(&self) -> Vec<(i64, i64)> {
        let mut out: Vec<(i64, i64)> = self.pile.iter().map(|p| (p.0, p.2)).collect();
        for run in std::iter::once(&self.main).chain(self.runs.iter()) {
            out.extend(run.points().map(|p| (p.0, p.2)));
        }
        out.sort_unstable();
        out
    }

    /// Whether the invariants hold (tests).
    pub fn check(&self) -> bool {
        let mut seqs: Vec<u64> = self.pile.iter().map(|p| p.1).collect();
        let mut ok = self.pile.len() <= PILE_MAX;
        for run in std::iter::once(&self.main).chain(self.runs.iter()) {
            ok &= run.dates.is_empty() || run.check();
            seqs.extend(run.points().map(|p| p.1));
        }
        let n = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        ok && seqs.len() == n && seqs.last().is_none_or(|s| *s < self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against brute force, with late points, both drops and ties (the Python module's
    /// hypothesis test covers more; this one runs under `cargo test`).
    #[test]
    fn counts_match_brute_force() {
        let mut state: u64 = 7;
        let mut next = move |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) % n) as i64
        };
        let mut points = DatedPoints::default();
        let mut brute: Vec<Point> = Vec::new();
        let mut seq = 0;
        let mut last = 0;
        for step in 0..4000 {
            let date = if next(5) == 0 { next(2000) } else { last + next(3) };
            last = last.max(date);
            let value = next(100);
            points.add(date, value);
            brute.push((date, seq, value));
            seq += 1;
            if step % 97 == 0 {
                let horizon = last - 300 - next(600);
                points.drop_before(horizon);
                brute.retain(|p| p.0 >= horizon);
            }
            if step % 211 == 0 {
                let k = (next(40) as usize).min(brute.len());
                points.drop_first(k);
                brute.sort_unstable();
                brute.drain(..k);
            }
            if step % 7 == 0 {
                let (lo, a) = (next(2000), next(100));
                let (hi, b) = (lo + next(500), a + next(60));
                let want = brute.iter().filter(|p| lo <= p.0 && p.0 <= hi && a <= p.2 && p.2 <= b).count();
                assert_eq!(points.count(lo, hi, a, b), want, "step {step}");
                assert!(points.check(), "step {step}");
            }
        }
        let mut want: Vec<(i64, i64)> = brute.iter().map(|p| (p.0, p.2)).collect();
        want.sort_unstable();
        assert_eq!(points.points(), want);
    }
}
