//! The matmul tiling: fixed, or autotuned per shape class (candidates timed on scratch
//! operands, the fastest kept for the process and, with `WGTRAIN_TUNE_CACHE`, on disk); and
//! the check that the subgroup variants give the reference's products here.

use super::kernels::{MatmulTiles, MatmulVariant};
use super::GpuBackend;
use crate::backend::Backend;
use crate::error::{Error, Result};

/// Timed runs of each candidate when autotuning a matmul.
const TUNE_ROUNDS: usize = 3;

/// A matmul's shape class for autotuning: each dimension rounded up to a power of two, and the
/// transposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TuneKey([usize; 3], bool, bool);

impl std::fmt::Display for TuneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [m, n, k] = self.0;
        let t = |x: bool| if x { "ᵀ" } else { "" };
        write!(f, "{m}×{n}×{k} A{}·B{}", t(self.1), t(self.2))
    }
}

impl TuneKey {
    /// `"m n k ta tb"`, the disk cache's form.
    pub(super) fn encode(&self) -> String {
        let [m, n, k] = self.0;
        format!("{m} {n} {k} {} {}", self.1 as u8, self.2 as u8)
    }

    pub(super) fn decode(s: &str) -> Option<TuneKey> {
        let v: Vec<usize> = s
            .split(' ')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        match v[..] {
            [m, n, k, ta, tb] if ta < 2 && tb < 2 => Some(TuneKey([m, n, k], ta == 1, tb == 1)),
            _ => None,
        }
    }

    pub(super) fn new(m: usize, n: usize, k: usize, ta: bool, tb: bool) -> TuneKey {
        TuneKey(
            [
                m.next_power_of_two(),
                n.next_power_of_two(),
                k.next_power_of_two(),
            ],
            ta,
            tb,
        )
    }
}

impl GpuBackend {
    /// Whether the subgroup matmuls (v4, v5) can run here and give the reference's products:
    /// subgroups exactly 8 wide, and v5's products checked against `reference::matmul_forward`.
    /// Checked once per context.
    pub(super) fn subgroup_matmul_works(&mut self) -> bool {
        if self.ctx.adapter().subgroup_sizes != Some((8, 8)) {
            return false;
        }
        if let Some(&ok) = self.ctx.subgroup_matmul_ok.get() {
            return ok;
        }
        let saved = (self.matmul_tiles, self.autotune);
        (self.matmul_tiles, self.autotune) = (MatmulTiles::SUBGROUP16, false);
        let ok = self.check_matmul_against_reference().unwrap_or(false);
        (self.matmul_tiles, self.autotune) = saved;
        self.resolved_tiles.clear();
        // A failed build leaves its error in the sink; it is not the caller's.
        let _ = self.ctx.check_errors("matmul v5 check");
        *self.ctx.subgroup_matmul_ok.get_or_init(|| ok)
    }

    /// Runs products of an awkward shape with the current tiling and compares them with the
    /// reference: A plain and transposed, the two ways the subgroup kernels share A's loads
    /// (B's transpose is read per invocation, as in v3). The pipelines it builds are the
    /// first autotuning candidates', so on a software adapter's first step (where lavapipe
    /// compiles each pipeline at its first dispatch, ~0.2 s apiece) the check costs little.
    pub(super) fn check_matmul_against_reference(&mut self) -> Result<bool> {
        let (m, n, k) = (76, 72, 20);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 61) as f32 / 61.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104_729) % 53) as f32 / 53.0 - 0.5)
            .collect();
        for (ta, tb) in [(false, false), (true, false)] {
            let at = if ta {
                self.upload(k, m, &a)?
            } else {
                self.upload(m, k, &a)?
            };
            let bt = if tb {
                self.upload(n, k, &b)?
            } else {
                self.upload(k, n, &b)?
            };
            let mut ct = self.zeros(m, n)?;
            self.matmul(&at, ta, &bt, tb, &mut ct)?;
            let got = self.read(&ct)?;
            let mut want = vec![0.0; m * n];
            crate::backend::reference::matmul_forward(&a, ta, &b, tb, &mut want, m, n, k);
            if got.iter().zip(&want).any(|(g, w)| (g - w).abs() > 1e-4) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Uses another matmul tiling from now on (the pipeline is built on first use). Rejected
    /// when the adapter cannot run it: too many threads per workgroup, a workgroup dimension
    /// or workgroup memory over its limits, or a zero size.
    pub fn set_matmul_tiles(&mut self, tiles: MatmulTiles) -> Result<()> {
        let problem = self.tiles_problem(tiles);
        match problem {
            Some(detail) => Err(Error::Invalid {
                op: "set_matmul_tiles",
                detail: format!("{tiles:?} does not fit this adapter: {detail}"),
            }),
            None => {
                self.matmul_tiles = tiles;
                self.autotune = false;
                self.resolved_tiles.clear();
                // Convolutions then run v2 on these tiles (see `conv_variant_for`).
                self.conv_tuned.clear();
                // Plans keep the pipelines they were recorded with.
                self.plan_generation += 1;
                Ok(())
            }
        }
    }

    /// Turns per-shape autotuning of the matmul tiling on or off (on by default; off after
    /// [`GpuBackend::set_matmul_tiles`]). Off, every product uses the current tiling, and
    /// every convolution v2 (unless [`GpuBackend::set_conv_variant`] fixes another).
    pub fn set_autotune(&mut self, on: bool) {
        self.autotune = on;
        self.resolved_tiles.clear();
        self.conv_tuned.clear();
        self.plan_generation += 1;
    }
}

impl GpuBackend {
    /// Why `tiles` cannot run on this adapter, if it cannot.
    fn tiles_problem(&self, tiles: MatmulTiles) -> Option<String> {
        let l = self.ctx.limits();
        let threads = tiles.wg_x as u64 * tiles.wg_y as u64;
        let shared_bytes = tiles.workgroup_bytes();
        if tiles.wg_x == 0 || tiles.wg_y == 0 || tiles.bk == 0 || tiles.split_k == 0 {
            Some("every size must be at least 1".to_string())
        } else if tiles.split_k > 1 && tiles.variant != MatmulVariant::Tiled8 {
            Some(format!(
                "split-K runs on v6 (Tiled8) only, not {:?}",
                tiles.variant
            ))
        } else if tiles.variant == MatmulVariant::Tiled8
            && (tiles.wg_x, tiles.wg_y, tiles.bk) != (16, 16, 8)
        {
            Some("v6's workgroup is fixed at 16 × 16 threads with K steps of 8".into())
        } else if tiles.variant.needs_subgroups()
            && self.ctx.adapter().subgroup_sizes != Some((8, 8))
        {
            Some(format!(
                "v4 and v5 need subgroups of exactly 8 invocations; this adapter has {}",
                match self.ctx.adapter().subgroup_sizes {
                    Some((lo, hi)) => format!("{lo} to {hi}"),
                    None => "no subgroup operations".into(),
                }
            ))
        } else if tiles.variant.needs_subgroups() && tiles.wg_x != 8 {
            Some("the wg_x of v4 and v5 is the subgroup width and must be 8".into())
        } else if threads > l.max_compute_invocations_per_workgroup as u64 {
            Some(format!(
                "{threads} threads per workgroup, over max_compute_invocations_per_workgroup = {}",
                l.max_compute_invocations_per_workgroup
            ))
        } else if tiles.wg_x > l.max_compute_workgroup_size_x
            || tiles.wg_y > l.max_compute_workgroup_size_y
        {
            Some(format!(
                "workgroup {}×{} over max_compute_workgroup_size_x/y = {}×{}",
                tiles.wg_x,
                tiles.wg_y,
                l.max_compute_workgroup_size_x,
                l.max_compute_workgroup_size_y
            ))
        } else if shared_bytes > l.max_compute_workgroup_storage_size as u64 {
            Some(format!(
                "{shared_bytes} bytes of workgroup memory, over max_compute_workgroup_storage_size = {}",
                l.max_compute_workgroup_storage_size
            ))
        } else {
            None
        }
    }

    /// The tiling for a product of this shape: the one `set_matmul_tiles` fixed, or, with
    /// autotuning on (the default), the fastest candidate for its shape class, measured on
    /// first use and cached for the process. Shapes the chosen variant cannot run go to v2.
    /// Resolved once per exact shape, so a training step's products cost one lookup each.
    pub(super) fn tiles_for(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        ta: bool,
        tb: bool,
    ) -> Result<MatmulTiles> {
        let shape = (m, n, k, ta, tb);
        if let Some(&t) = self.resolved_tiles.get(&shape) {
            return Ok(t);
        }
        let t = self.resolve_tiles(m, n, k, ta, tb)?;
        self.resolved_tiles.insert(shape, t);
        Ok(t)
    }

    pub(super) fn resolve_tiles(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        ta: bool,
        tb: bool,
    ) -> Result<MatmulTiles> {
        let fixed = self.matmul_tiles;
        let fallback = |t: MatmulTiles| {
            if t.runs(m, n, k, ta, tb) {
                t
            } else {
                MatmulTiles::DIRECT
            }
        };
        if !self.autotune {
            return Ok(fallback(fixed));
        }
        let mut candidates: Vec<MatmulTiles> = self
            .tune_candidates()
            .into_iter()
            .filter(|t| t.runs(m, n, k, ta, tb))
            .collect();
        candidates.extend(Self::split_candidates(&candidates, m, n, k));
        if candidates.len() < 2 {
            return Ok(candidates
                .first()
                .copied()
                .unwrap_or_else(|| fallback(fixed)));
        }
        let key = TuneKey::new(m, n, k, ta, tb);
        let known = self
            .ctx
            .tuned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied();
        // A tiling from the disk cache counts only if it is still a candidate here.
        if let Some(t) = known.filter(|t| candidates.contains(t)) {
            return Ok(t);
        }
        let best = self.tune(m, n, k, ta, tb, &candidates)?;
        self.ctx
            .tuned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, best);
        self.ctx.save_tuning();
        self.stats.tunings += 1;
        Ok(best)
    }

    /// The tilings worth timing here, the default first.
    pub(super) fn tune_candidates(&self) -> Vec<MatmulTiles> {
        let base = self.matmul_tiles;
        let with = |wg_x, wg_y, bk| MatmulTiles {
            wg_x,
            wg_y,
            bk,
            ..base
        };
        let list = match base.variant {
            // v5 beat v4 on every MLP shape timed (docs/PERFORMANCE.md); what remains to
            // choose is how many subgroups share a workgroup.
            MatmulVariant::Subgroup | MatmulVariant::Subgroup16 => vec![
                MatmulTiles::SUBGROUP16,
                MatmulTiles {
                    wg_y: 1,
                    ..MatmulTiles::SUBGROUP16
                },
            ],
            MatmulVariant::Vec4 | MatmulVariant::Direct => {
                vec![base, with(8, 2, 1), with(4, 4, 1)]
            }
            MatmulVariant::Tiled | MatmulVariant::Tiled8 => vec![
                MatmulTiles::TILED,
                MatmulTiles {
                    bk: 8,
                    ..MatmulTiles::TILED
                },
                MatmulTiles {
                    wg_x: 8,
                    wg_y: 8,
                    ..MatmulTiles::TILED
                },
                MatmulTiles::VEC4,
                MatmulTiles::TILED8,
            ],
        };
        list.into_iter()
            .filter(|&t| self.tiles_problem(t).is_none())
            .collect()
    }

    /// Split-K tilings worth timing for an `[m, n, k]` product, where v6 is a candidate:
    /// for a product of fewer than 16 of its blocks over a K of 512 or more, slices of 4 and 8
    /// that are each at least 64 deep.
    fn split_candidates(
        candidates: &[MatmulTiles],
        m: usize,
        n: usize,
        k: usize,
    ) -> Vec<MatmulTiles> {
        let v6 = MatmulTiles::TILED8;
        if !candidates.contains(&v6) {
            return Vec::new();
        }
        let blocks = m.div_ceil(v6.block_m() as usize) * n.div_ceil(v6.block_n() as usize);
        if blocks >= 16 || k < 512 {
            return Vec::new();
        }
        [4u32, 8]
            .into_iter()
            .filter(|&s| k / s as usize >= 64)
            .map(|split_k| MatmulTiles { split_k, ..v6 })
            .collect()
    }

    /// Times each candidate on scratch operands of this shape and returns the fastest.
    pub(super) fn tune(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        ta: bool,
        tb: bool,
        candidates: &[MatmulTiles],
    ) -> Result<MatmulTiles> {
        self.flush()?;
        let a = if ta {
            self.zeros(k, m)?
        } else {
            self.zeros(m, k)?
        };
        let b = if tb {
            self.zeros(n, k)?
        } else {
            self.zeros(k, n)?
        };
        let mut c = self.zeros(m, n)?;
        let times = self.time_each(candidates.len(), |g, i| {
            g.record_matmul(candidates[i], &a, ta, &b, tb, &mut c)
        })?;
        Ok(fastest_of(&times, candidates))
    }

    /// Each of `count` candidates' fastest of [`TUNE_ROUNDS`] runs, in seconds; `run(self, i)`
    /// records candidate `i` once. Timed on the device where the adapter has timestamp
    /// queries (a profiler of its own, the caller's put back after), else by the host clock
    /// around a submit and wait.
    pub(super) fn time_each(
        &mut self,
        count: usize,
        mut run: impl FnMut(&mut Self, usize) -> Result<()>,
    ) -> Result<Vec<f64>> {
        self.flush()?;
        let device_clock = self.ctx.has_timestamps();
        let callers = self.profiler.take();
        let timed = (|| {
            if device_clock {
                self.enable_profiling()?;
            }
            // One untimed run each (builds the pipelines), then rounds that time one run of
            // each in turn; a candidate's time is its fastest run, so a burst of load on a
            // shared machine during one run cannot pick the loser.
            for i in 0..count {
                run(self, i)?;
                self.finish()?;
            }
            let mut fastest = vec![f64::INFINITY; count];
            for _ in 0..TUNE_ROUNDS {
                for (i, best) in fastest.iter_mut().enumerate() {
                    self.reset_kernel_times();
                    let start = std::time::Instant::now();
                    run(self, i)?;
                    self.finish()?;
                    let seconds = if device_clock {
                        self.kernel_times().iter().map(|t| t.nanos).sum::<f64>() / 1e9
                    } else {
                        start.elapsed().as_secs_f64()
                    };
                    *best = best.min(seconds);
                }
            }
            Ok(fastest)
        })();
        self.profiler = callers;
        timed
    }
}

/// The candidate with the least time (the first of equals).
pub(super) fn fastest_of<T: Copy>(times: &[f64], candidates: &[T]) -> T {
    times
        .iter()
        .zip(candidates)
        .min_by(|x, y| x.0.total_cmp(y.0))
        .map(|(_, &c)| c)
        .expect("at least one candidate")
}
