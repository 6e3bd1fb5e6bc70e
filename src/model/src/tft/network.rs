//! The Temporal Fusion Transformer (Lim et al., 2021) in tch: gated residual networks,
//! variable selection, static covariate encoders, an LSTM encoder–decoder, static
//! enrichment, interpretable multi-head attention with a causal mask, a position-wise GRN
//! and one quantile head per metric, whose output is added to the seasonal-naive value.

use super::{Batch, TftShape};
use std::sync::atomic::{AtomicBool, Ordering};
use tch::nn::{self, Module, RNN};
use tch::{Kind, Tensor};

/// Gated residual network: ELU(W1·x + W3·c) → W2 → dropout → GLU, plus the skip, layer norm.
#[derive(Debug)]
struct Grn {
    fc1: nn::Linear,
    context: Option<nn::Linear>,
    fc2: nn::Linear,
    gate: nn::Linear,
    skip: Option<nn::Linear>,
    norm: nn::LayerNorm,
    dropout: f64,
}

impl Grn {
    fn new(p: nn::Path, input: i64, hidden: i64, output: i64, context: bool, dropout: f64) -> Grn {
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        Grn {
            fc1: nn::linear(&p / "fc1", input, hidden, Default::default()),
            context: context.then(|| nn::linear(&p / "context", hidden, hidden, no_bias)),
            fc2: nn::linear(&p / "fc2", hidden, hidden, Default::default()),
            gate: nn::linear(&p / "gate", hidden, 2 * output, Default::default()),
            skip: (input != output)
                .then(|| nn::linear(&p / "skip", input, output, Default::default())),
            norm: layer_norm(&p / "norm", output),
            dropout,
        }
    }

    /// `x`: [..., input]; `c`: [B, hidden], broadcast over the time axis when `x` has one.
    /// `fused`: in forecasts, the GRN's tail runs in the fused pass where it can
    /// ([`gate_add_norm_fused`]).
    fn forward(&self, x: &Tensor, c: Option<&Tensor>, train: bool, fused: bool) -> Tensor {
        let residual = match &self.skip {
            Some(s) => s.forward(x),
            None => x.shallow_clone(),
        };
        self.finish(self.fc1.forward(x), residual, c, train, fused)
    }

    /// The GRN after its input layers: `first` is fc1's output and `residual` the skip's,
    /// each computed by the caller (directly, or folded into an embedding before them).
    fn finish(
        &self,
        mut first: Tensor,
        residual: Tensor,
        c: Option<&Tensor>,
        train: bool,
        fused: bool,
    ) -> Tensor {
        if let (Some(ctx), Some(c)) = (&self.context, c) {
            let mut c = ctx.forward(c);
            while c.dim() < first.dim() {
                c = c.unsqueeze(1);
            }
            first += c;
        }
        let mut g = if train {
            let a = self.fc2.forward(&first.elu()).dropout(self.dropout, train);
            self.gate.forward(&a)
        } else {
            let (weights, bias) = self.fc2_and_gate();
            if fused {
                let gate = (&weights, &bias, &self.norm);
                if let Some(out) = gate_add_norm_fused(&first, &residual, gate, true) {
                    return out;
                }
            }
            first.elu().linear(&weights, Some(&bias))
        }
        .glu(-1);
        g += residual;
        self.norm.forward(&g)
    }

    /// Without dropout between them, fc2 and the gate are one linear map: its weights
    /// `[2·output, hidden]` and bias.
    fn fc2_and_gate(&self) -> (Tensor, Tensor) {
        let weights = self.gate.ws.matmul(&self.fc2.ws);
        let bias = self.gate.ws.matmul(&bias_or_zeros(&self.fc2)) + bias_or_zeros(&self.gate);
        (weights, bias)
    }
}

/// Every layer norm's epsilon (libtorch's default), named because the fused forecast path
/// (`fused`) computes the same norm.
const LAYER_NORM_EPS: f64 = 1e-5;

fn layer_norm(p: nn::Path, width: i64) -> nn::LayerNorm {
    let config = nn::LayerNormConfig {
        eps: LAYER_NORM_EPS,
        ..Default::default()
    };
    nn::layer_norm(p, vec![width], config)
}

/// A tensor's values as a row-major `Vec<f32>`, from any device (None if libtorch refuses).
pub(super) fn to_f32_vec(t: &Tensor) -> Option<Vec<f32>> {
    let t = t.to(tch::Device::Cpu).to_kind(Kind::Float).contiguous();
    Vec::<f32>::try_from(&t.view(-1)).ok()
}

/// A contiguous `f32` tensor's values on the CPU, borrowed without a copy; None for any
/// other tensor (another kind or device, a view with gaps, no values).
fn f32_values(t: &Tensor) -> Option<&[f32]> {
    let fits = t.device() == tch::Device::Cpu && t.kind() == Kind::Float && t.is_contiguous();
    let len = t.numel();
    if !fits || len == 0 {
        return None;
    }
    // SAFETY: a contiguous Float tensor on the CPU holds `numel` f32 values from
    // `data_ptr` on, kept alive by `t`, which the slice borrows; the forecast pass writes
    // no tensor in place while it reads one this way.
    Some(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, len) })
}

/// `t` as a contiguous `f32` tensor (`t` itself where it is one), for [`f32_values`].
fn dense(t: &Tensor) -> Tensor {
    t.to_kind(Kind::Float).contiguous()
}

/// A new CPU tensor of `size` whose values `fill` writes (it answers whether it did);
/// None where it did not. The fused passes write their outputs this way, without a copy.
fn filled(size: &[i64], fill: impl FnOnce(&mut [f32]) -> bool) -> Option<Tensor> {
    let out = Tensor::zeros(size, (Kind::Float, tch::Device::Cpu));
    let len = f32_values(&out)?.len();
    // SAFETY: as in `f32_values`; `out` was made here and no view or shallow clone of it
    // exists, so nothing else reads or writes its values while `fill` has them.
    let values = unsafe { std::slice::from_raw_parts_mut(out.data_ptr() as *mut f32, len) };
    fill(values).then_some(out)
}

/// `LayerNorm(GLU(W·f(x) + b) + residual)` over the last axis, f the ELU when `elu` (a
/// GRN's tail) or the identity (a gate-add-norm), in the fused pass (`fused::gate`);
/// `gate`: W [2·out, k], b [2·out] and the norm. None where it does not run (another
/// device, a CPU without it, other widths, a residual of another shape), and the tensor
/// operations do the work.
fn gate_add_norm_fused(
    x: &Tensor,
    residual: &Tensor,
    gate: (&Tensor, &Tensor, &nn::LayerNorm),
    elu: bool,
) -> Option<Tensor> {
    let (weights, bias, norm) = gate;
    let (output, input) = (weights.size()[0] / 2, weights.size()[1]);
    if x.device() != tch::Device::Cpu
        || !super::fused::gate::available(input as usize, output as usize)
    {
        return None;
    }
    let mut size = x.size();
    if size.last() != Some(&input) {
        return None;
    }
    size.pop();
    size.push(output);
    if residual.size() != size {
        return None;
    }
    let (x, residual) = (dense(x), dense(residual));
    let weights_t = to_f32_vec(&weights.transpose(0, 1))?;
    let bias = to_f32_vec(bias)?;
    let gamma = to_f32_vec(norm.ws.as_ref()?)?;
    let beta = to_f32_vec(norm.bs.as_ref()?)?;
    let gate = super::fused::gate::GateWeights {
        input: input as usize,
        output: output as usize,
        elu,
        weights_t: &weights_t,
        bias: &bias,
        gamma: &gamma,
        beta: &beta,
        eps: LAYER_NORM_EPS as f32,
    };
    let (x, residual) = (f32_values(&x)?, f32_values(&residual)?);
    filled(&size, |out| {
        super::fused::gate::gate_add_norm(&gate, x, residual, out)
    })
}

/// A linear layer's bias, zeros when it has none.
fn bias_or_zeros(layer: &nn::Linear) -> Tensor {
    match &layer.bs {
        Some(b) => b.shallow_clone(),
        None => Tensor::zeros([layer.ws.size()[0]], (Kind::Float, layer.ws.device())),
    }
}

/// A linear layer applied to per-variable linear embeddings of scalars, folded into one
/// affine map of the scalars themselves. With `x`: [..., V], the embeddings are
/// `x_v·w_v + b_v` (`embed_w`, `embed_b`: [V, e]) and the layer reads all of them
/// concatenated ([V·e] → out): the result is `x·Aᵀ + a` with A: [out, V]. The same numbers
/// without materialising the [..., V, e] embeddings.
fn fold_flat(layer: &nn::Linear, embed_w: &Tensor, embed_b: &Tensor) -> (Tensor, Tensor) {
    let (vars, e) = (embed_w.size()[0], embed_w.size()[1]);
    let out = layer.ws.size()[0];
    let per_var = layer.ws.view([out, vars, e]);
    let a = (&per_var * embed_w.unsqueeze(0)).sum_dim_intlist(-1, false, Kind::Float);
    let bias =
        (&per_var * embed_b.unsqueeze(0)).sum_dim_intlist(&[-1i64, -2][..], false, Kind::Float);
    let bias = match &layer.bs {
        Some(b) => bias + b,
        None => bias,
    };
    (a, bias)
}

/// One linear layer per variable, each applied to its own variable's embedding
/// `x_v·w_v + b_v`: folded to `x_v·u_v + c_v` (u, c: [V, out]).
fn fold_per_var(layers: &[&nn::Linear], embed_w: &Tensor, embed_b: &Tensor) -> (Tensor, Tensor) {
    let weights = Tensor::stack(&layers.iter().map(|l| &l.ws).collect::<Vec<_>>(), 0); // [V, out, e]
    let u = weights.bmm(&embed_w.unsqueeze(-1)).squeeze_dim(-1);
    let c = weights.bmm(&embed_b.unsqueeze(-1)).squeeze_dim(-1);
    let biases: Vec<Tensor> = layers.iter().map(|l| bias_or_zeros(l)).collect();
    (u, c + Tensor::stack(&biases, 0))
}

/// GLU gate, then add the skip input and layer-normalise.
#[derive(Debug)]
struct GateAddNorm {
    gate: nn::Linear,
    norm: nn::LayerNorm,
    dropout: f64,
}

impl GateAddNorm {
    fn new(p: nn::Path, d: i64, dropout: f64) -> Self {
        GateAddNorm {
            gate: nn::linear(&p / "gate", d, 2 * d, Default::default()),
            norm: layer_norm(&p / "norm", d),
            dropout,
        }
    }

    /// `fused`: in forecasts, in the fused pass where it can ([`gate_add_norm_fused`]).
    fn forward(&self, x: &Tensor, skip: &Tensor, train: bool, fused: bool) -> Tensor {
        if !train && fused {
            let gate = (&self.gate.ws, &bias_or_zeros(&self.gate), &self.norm);
            if let Some(out) = gate_add_norm_fused(x, skip, gate, false) {
                return out;
            }
        }
        let g = self.gate.forward(&x.dropout(self.dropout, train)).glu(-1);
        self.norm.forward(&(g + skip))
    }
}

/// The selection shared by every variable selection network: a GRN over all variables'
/// embeddings gives softmax weights, each variable's own GRN (width `e` → d) processes it,
/// and the outputs are mixed by the weights. The variable axis is the second to last.
#[derive(Debug)]
struct Selection {
    flat: Grn,
    per_var: Vec<Grn>,
    d: i64,
}

impl Selection {
    fn new(p: &nn::Path, vars: i64, e: i64, d: i64, context: bool, dropout: f64) -> Selection {
        Selection {
            flat: Grn::new(p / "flat", vars * e, d, vars, context, dropout),
            per_var: (0..vars)
                .map(|i| Grn::new(p / format!("var{i}"), e, e, d, false, dropout))
                .collect(),
            d,
        }
    }

    /// `emb`: [..., V, e]; returns ([..., d], weights [..., V]).
    fn forward(
        &self,
        emb: &Tensor,
        c: Option<&Tensor>,
        train: bool,
        fused: bool,
    ) -> (Tensor, Tensor) {
        let weights = self
            .flat
            .forward(&emb.flatten(-2, -1), c, train, fused)
            .softmax(-1, Kind::Float);
        let var_axis = emb.dim() as i64 - 2;
        // The weighted sum is accumulated variable by variable: stacking the outputs first
        // would materialise a [..., V, d] tensor and cost more than the GRNs.
        let mixed = self
            .per_var
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let i = i as i64;
                g.forward(&emb.select(var_axis, i), None, train, fused) * weights.narrow(-1, i, 1)
            })
            .reduce(|acc, term| acc + term)
            .unwrap_or_else(|| {
                let mut size = emb.size();
                size.truncate(size.len() - 2);
                size.push(self.d);
                Tensor::zeros(size.as_slice(), (Kind::Float, emb.device()))
            });
        (mixed, weights)
    }

    /// [`Selection::forward`] for scalar inputs embedded linearly (`x`: [..., V], the
    /// embedding `x_v·embed_w_v + embed_b_v`), with every layer that reads an embedding
    /// folded into the embedding: no [..., V, e] tensor, and the per-variable input and
    /// skip layers become one fused multiply-add each. The same network, the same numbers
    /// up to rounding (a unit test compares the two).
    fn forward_scalars(
        &self,
        x: &Tensor,
        embed_w: &Tensor,
        embed_b: &Tensor,
        c: Option<&Tensor>,
        train: bool,
        use_fused: bool,
    ) -> (Tensor, Tensor) {
        let flat = &self.flat;
        let (a, a0) = fold_flat(&flat.fc1, embed_w, embed_b);
        let residual = match &flat.skip {
            Some(skip) => {
                let (s, s0) = fold_flat(skip, embed_w, embed_b);
                x.linear(&s, Some(&s0))
            }
            // Only when V·e equals V, i.e. e = 1: the embeddings are the residual.
            None => x * embed_w.squeeze_dim(-1) + embed_b.squeeze_dim(-1),
        };
        let weights = flat
            .finish(x.linear(&a, Some(&a0)), residual, c, train, use_fused)
            .softmax(-1, Kind::Float);
        let first: Vec<&nn::Linear> = self.per_var.iter().map(|g| &g.fc1).collect();
        let (u, u0) = fold_per_var(&first, embed_w, embed_b);
        let skips: Option<Vec<&nn::Linear>> =
            self.per_var.iter().map(|g| g.skip.as_ref()).collect();
        let (sigma, tau) = match &skips {
            Some(skips) => fold_per_var(skips, embed_w, embed_b),
            None => (embed_w.shallow_clone(), embed_b.shallow_clone()),
        };
        let mut size = x.size();
        size.pop();
        size.push(self.d);
        if !train && use_fused {
            if let Some(mixed) = self.mix_fused(x, &weights, (&u, &u0), (&sigma, &tau), &size) {
                return (mixed, weights);
            }
        }
        let mut mixed = Tensor::zeros(size.as_slice(), (Kind::Float, x.device()));
        for (i, grn) in self.per_var.iter().enumerate() {
            let i = i as i64;
            let xi = x.narrow(-1, i, 1);
            let first = u0.get(i).addcmul(&xi, &u.get(i));
            let residual = tau.get(i).addcmul(&xi, &sigma.get(i));
            let out = grn.finish(first, residual, None, train, use_fused);
            let _ = mixed.addcmul_(&out, &weights.narrow(-1, i, 1));
        }
        (mixed, weights)
    }

    /// The per-variable GRNs and their mix in one fused pass on the CPU (`fused`), from the
    /// folded first layers `first` and skips `skip` ([V, ·] each); None where it does not
    /// run (another device, a CPU without it, widths beyond it), and the tensor operations
    /// do the work.
    fn mix_fused(
        &self,
        x: &Tensor,
        weights: &Tensor,
        first: (&Tensor, &Tensor),
        skip: (&Tensor, &Tensor),
        size: &[i64],
    ) -> Option<Tensor> {
        let (e, d) = (first.0.size()[1] as usize, self.d as usize);
        if x.device() != tch::Device::Cpu || !super::fused::selection::available(e, d) {
            return None;
        }
        let (w, bias): (Vec<Tensor>, Vec<Tensor>) =
            self.per_var.iter().map(Grn::fc2_and_gate).unzip();
        let norm = |part: fn(&nn::LayerNorm) -> &Option<Tensor>| -> Option<Tensor> {
            let parts: Option<Vec<&Tensor>> = self
                .per_var
                .iter()
                .map(|g| part(&g.norm).as_ref())
                .collect();
            Some(Tensor::stack(&parts?, 0))
        };
        let gamma = to_f32_vec(&norm(|n| &n.ws)?)?;
        let beta = to_f32_vec(&norm(|n| &n.bs)?)?;
        let (u, u0) = (to_f32_vec(first.0)?, to_f32_vec(first.1)?);
        let (sigma, tau) = (to_f32_vec(skip.0)?, to_f32_vec(skip.1)?);
        let w = to_f32_vec(&Tensor::stack(&w, 0))?;
        let bias = to_f32_vec(&Tensor::stack(&bias, 0))?;
        let grns = super::fused::selection::VariableGrns {
            vars: self.per_var.len(),
            e,
            d,
            u: &u,
            u0: &u0,
            w: &w,
            bias: &bias,
            sigma: &sigma,
            tau: &tau,
            gamma: &gamma,
            beta: &beta,
            eps: LAYER_NORM_EPS as f32,
        };
        let (x, selection) = (dense(x), dense(weights));
        let (x, selection) = (f32_values(&x)?, f32_values(&selection)?);
        filled(size, |out| {
            super::fused::selection::mix(&grns, x, selection, out)
        })
    }
}

/// Whether forecasts on the CPU run the variable selections' per-variable GRNs and the
/// attention in this crate's fused passes (`fused`) where the CPU has them; on by default,
/// off only to time them against libtorch's operations.
static FUSED: AtomicBool = AtomicBool::new(true);

/// See [`FUSED`]: for benchmarks that time the fused passes against libtorch's operations.
pub fn set_fused_forecast_passes(enabled: bool) {
    FUSED.store(enabled, Ordering::Relaxed);
}

/// Variable selection for the time-varying inputs: each real-valued input gets its own
/// linear embedding (width `e`), then [`Selection`] with the static context.
#[derive(Debug)]
struct Vsn {
    embed_w: Tensor,
    embed_b: Tensor,
    selection: Selection,
}

fn embedding_weights(p: &nn::Path, vars: i64, e: i64) -> (Tensor, Tensor) {
    (
        p.var(
            "embed_w",
            &[vars, e],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 0.5,
            },
        ),
        p.var("embed_b", &[vars, e], nn::Init::Const(0.0)),
    )
}

impl Vsn {
    fn new(p: nn::Path, vars: i64, e: i64, d: i64, dropout: f64) -> Vsn {
        let (embed_w, embed_b) = embedding_weights(&p, vars, e);
        Vsn {
            embed_w,
            embed_b,
            selection: Selection::new(&p, vars, e, d, true, dropout),
        }
    }

    /// `x`: [B, T, V]; returns ([B, T, d], weights [B, T, V]).
    fn forward(&self, x: &Tensor, c: &Tensor, train: bool, fused: bool) -> (Tensor, Tensor) {
        self.selection
            .forward_scalars(x, &self.embed_w, &self.embed_b, Some(c), train, fused)
    }
}

/// Static variable selection: the profile (an embedding) and the real-valued static
/// inputs (each metric's level and spread in the encoder window, each with its own linear
/// embedding), through [`Selection`] without a context.
#[derive(Debug)]
struct StaticVsn {
    profile: nn::Embedding,
    embed_w: Tensor,
    embed_b: Tensor,
    selection: Selection,
}

impl StaticVsn {
    fn new(p: nn::Path, profiles: i64, reals: i64, e: i64, d: i64, dropout: f64) -> StaticVsn {
        // Created in this order so that a seed gives the weights it always gave.
        let profile = nn::embedding(&p / "profile", profiles, e, Default::default());
        let (embed_w, embed_b) = embedding_weights(&p, reals, e);
        StaticVsn {
            profile,
            embed_w,
            embed_b,
            selection: Selection::new(&p, reals + 1, e, d, false, dropout),
        }
    }

    /// `profile`: [B] (i64), `reals`: [B, R]; returns ([B, d], weights [B, 1 + R]).
    fn forward(
        &self,
        profile: &Tensor,
        reals: &Tensor,
        train: bool,
        fused: bool,
    ) -> (Tensor, Tensor) {
        let emb = Tensor::cat(
            &[
                self.profile.forward(profile).unsqueeze(1),
                reals.unsqueeze(-1) * &self.embed_w + &self.embed_b,
            ],
            1,
        ); // [B, V, e]
        self.selection.forward(&emb, None, train, fused)
    }
}

/// Interpretable multi-head attention: per-head queries and keys, one value projection
/// shared by all heads, heads averaged, so the averaged weights explain the output.
#[derive(Debug)]
struct InterpretableAttention {
    queries: Vec<nn::Linear>,
    keys: Vec<nn::Linear>,
    value: nn::Linear,
    out: nn::Linear,
    head_dim: i64,
    dropout: f64,
}

impl InterpretableAttention {
    fn new(p: nn::Path, d: i64, heads: i64, dropout: f64) -> Self {
        let head_dim = (d / heads).max(1);
        InterpretableAttention {
            queries: (0..heads)
                .map(|h| nn::linear(&p / format!("q{h}"), d, head_dim, Default::default()))
                .collect(),
            keys: (0..heads)
                .map(|h| nn::linear(&p / format!("k{h}"), d, head_dim, Default::default()))
                .collect(),
            value: nn::linear(&p / "v", d, head_dim, Default::default()),
            out: nn::linear(&p / "out", head_dim, d, Default::default()),
            head_dim,
            dropout,
        }
    }

    /// `q`: [B, H, d] (decoder positions), `kv`: [B, T+H, d], `mask`: [H, T+H] (true =
    /// hidden). Returns [B, H, d], and the weights averaged over heads [B, H, T+H] when
    /// `with_weights` (explanations, never in training): without them every head runs in
    /// one fused kernel: libtorch's, or in forecasts on the CPU, when `fused`, this crate's
    /// (`fused::attention`).
    fn forward(
        &self,
        q: &Tensor,
        kv: &Tensor,
        mask: &Tensor,
        train: bool,
        with_weights: bool,
        fused: bool,
    ) -> (Tensor, Option<Tensor>) {
        let heads = self.queries.len() as i64;
        let per_head = |x: &Tensor, layers: &[nn::Linear]| {
            let weights: Vec<&Tensor> = layers.iter().map(|l| &l.ws).collect();
            let biases: Vec<Tensor> = layers.iter().map(bias_or_zeros).collect();
            let (b, len) = (x.size()[0], x.size()[1]);
            x.linear(&Tensor::cat(&weights, 0), Some(&Tensor::cat(&biases, 0)))
                .view([b, len, heads, self.head_dim])
                .transpose(1, 2) // [B, heads, len, head_dim]
        };
        let queries = per_head(q, &self.queries);
        let keys = per_head(kv, &self.keys);
        let size = keys.size();
        // One value projection shared by the heads.
        let value = self.value.forward(kv);
        if !with_weights && !train && fused {
            if let Some(out) = self.attend_fused(&queries, &keys, &value, mask) {
                return (self.out.forward(&out), None);
            }
        }
        let values = value.unsqueeze(1).expand(size.as_slice(), false);
        if !with_weights {
            let dropout = if train { self.dropout } else { 0.0 };
            // Attention dropout, one draw per head and position: zeroing position j's
            // weight for every query of a head is zeroing its value row there, which the
            // fused kernel can take (a draw per weight would be [B, heads, H, T+H] random
            // numbers, the most expensive step of a training pass).
            let values = if dropout > 0.0 {
                let keep =
                    Tensor::empty([size[0], size[1], size[2], 1], (Kind::Float, kv.device()))
                        .bernoulli_float_(1.0 - dropout)
                        / (1.0 - dropout);
                values * keep
            } else {
                values
            };
            let visible = mask.logical_not();
            let out = Tensor::scaled_dot_product_attention(
                &queries,
                &keys,
                &values,
                Some(&visible),
                0.0,
                false,
                None,
                false,
            );
            return (self.out.forward(&out.mean_dim(1, false, Kind::Float)), None);
        }
        let scale = (self.head_dim as f64).sqrt();
        let attn = (queries.matmul(&keys.transpose(-2, -1)) / scale)
            .masked_fill(mask, f64::NEG_INFINITY)
            .softmax(-1, Kind::Float);
        let out = attn.matmul(&values).mean_dim(1, false, Kind::Float);
        let weights = attn.mean_dim(1, false, Kind::Float);
        (self.out.forward(&out), Some(weights))
    }

    /// The attention in one fused pass on the CPU (`fused::attention`), before the output
    /// layer: `queries`, `keys` [B, heads, ·, head_dim], `value` [B, T+H, head_dim]. None where it
    /// does not run (another device, a CPU without it, other head widths, a mask other
    /// than the decoder's causal one), and libtorch's kernel does the work.
    fn attend_fused(
        &self,
        queries: &Tensor,
        keys: &Tensor,
        value: &Tensor,
        mask: &Tensor,
    ) -> Option<Tensor> {
        let head = self.head_dim as usize;
        if value.device() != tch::Device::Cpu || !super::fused::attention::available(head) {
            return None;
        }
        let (b, heads, h) = (queries.size()[0], queries.size()[1], queries.size()[2]);
        let len = keys.size()[2];
        // The kernel applies the decoder's causal mask itself: check it is the one given.
        if mask.size() != [h, len] || !mask.equal(&causal_mask(len - h, h, value.device())) {
            return None;
        }
        let shape = super::fused::attention::AttentionShape {
            windows: b as usize,
            heads: heads as usize,
            queries: h as usize,
            len: len as usize,
            head,
        };
        let q = dense(queries);
        let k_t = dense(&keys.transpose(-2, -1));
        let v_t = dense(&value.transpose(1, 2));
        let (q, k_t, v_t) = (f32_values(&q)?, f32_values(&k_t)?, f32_values(&v_t)?);
        filled(&[b, h, self.head_dim], |out| {
            super::fused::attention::attend(shape, q, k_t, v_t, out)
        })
    }
}

/// The decoder's causal mask [H, T+H] (true = hidden): decoder step i sits at position
/// t + i and sees positions 0 ..= t + i.
fn causal_mask(t: i64, h: i64, device: tch::Device) -> Tensor {
    let positions = Tensor::arange(t + h, (Kind::Int64, device));
    let query_pos = Tensor::arange(h, (Kind::Int64, device)) + t;
    positions.unsqueeze(0).gt_tensor(&query_pos.unsqueeze(1))
}

/// What one forward pass returns.
pub struct TftOutput {
    /// [B, H, M, Q] in normalised units.
    pub quantiles: Tensor,
    /// Encoder variable-selection weights [B, T, V_enc].
    pub encoder_weights: Tensor,
    /// Decoder variable-selection weights [B, H, V_dec].
    pub decoder_weights: Tensor,
    /// Static variable-selection weights [B, 1 + V_static_real].
    pub static_weights: Tensor,
    /// Attention of each decoder step over all positions [B, H, T+H], averaged over heads;
    /// only from [`Tft::forward_explained`].
    pub attention: Option<Tensor>,
}

/// The network.
#[derive(Debug)]
pub struct Tft {
    shape: TftShape,
    static_vsn: StaticVsn,
    static_selection: Grn,
    static_enrichment: Grn,
    static_h: Grn,
    static_c: Grn,
    encoder_vsn: Vsn,
    decoder_vsn: Vsn,
    encoder: nn::LSTM,
    decoder: nn::LSTM,
    post_lstm: GateAddNorm,
    enrichment: Grn,
    attention: InterpretableAttention,
    post_attention: GateAddNorm,
    position_wise: Grn,
    post_ff: GateAddNorm,
    head: nn::Linear,
    /// [H, Q, R]: the level-correction path's weights (see `forward`).
    level: Tensor,
    /// [M, Q]: the band calibration (`TftShape::band_scales`), when there is one.
    band_scale: Option<BandScale>,
    /// The correction calibration (`TftShape::correction_scales`), when there is one.
    correction: Option<Correction>,
}

/// Each forecast's median moved to a factor of its distance from the seasonal median,
/// per metric and horizon bucket, every quantile with it.
#[derive(Debug)]
struct Correction {
    /// [1, H, M, 1]: one minus each step's and metric's factor (the share of the distance
    /// taken off).
    taken_off: Tensor,
    median: i64,
}

impl Correction {
    /// `scales`: one factor per metric, or one per metric and horizon bucket (metric-major,
    /// the buckets of [`correction_buckets`]); anything else is no correction.
    fn new(shape: &TftShape, scales: &[f64], device: tch::Device) -> Option<Correction> {
        let (m, h) = (shape.metrics.len(), shape.horizon_steps);
        let buckets = correction_buckets(shape);
        let per_metric = if scales.len() == m {
            1
        } else if scales.len() == m * buckets.len() {
            buckets.len()
        } else {
            return None;
        };
        if scales.iter().any(|s| !s.is_finite()) {
            return None;
        }
        let bucket_of = |step: usize| {
            if per_metric == 1 {
                0
            } else {
                buckets
                    .iter()
                    .position(|b| step < b.to)
                    .unwrap_or(buckets.len() - 1)
            }
        };
        let taken_off: Vec<f32> = (0..h)
            .flat_map(|step| {
                let k = bucket_of(step);
                (0..m).map(move |metric| (1.0 - scales[metric * per_metric + k]) as f32)
            })
            .collect();
        Some(Correction {
            taken_off: Tensor::from_slice(&taken_off)
                .view([1, h as i64, m as i64, 1])
                .to(device),
            median: nordiq_core::forecast::median_index(&shape.quantiles) as i64,
        })
    }

    /// `quantiles`: [B, H, M, Q]; `seasonal`: [B, H, M, 1].
    fn apply(&self, quantiles: Tensor, seasonal: &Tensor) -> Tensor {
        let distance = quantiles.narrow(3, self.median, 1) - seasonal;
        quantiles - distance * &self.taken_off
    }
}

/// The horizon buckets the correction calibration fits a factor for (0–1 h, 1–4 h, 4–8 h,
/// beyond: the report's buckets, so each is judged where it is reported).
pub fn correction_buckets(shape: &TftShape) -> Vec<crate::accuracy::HorizonBucket> {
    crate::accuracy::horizon_buckets(shape.step_seconds, shape.horizon_steps)
}

/// Each quantile's distance from the median, multiplied per metric and quantile.
#[derive(Debug)]
struct BandScale {
    factors: Tensor,
    median: i64,
}

impl BandScale {
    fn new(shape: &TftShape, scales: &[f64], device: tch::Device) -> Option<BandScale> {
        let (m, q) = (shape.metrics.len(), shape.quantiles.len());
        let median = nordiq_core::forecast::median_index(&shape.quantiles);
        if scales.len() != m * q || scales.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return None;
        }
        let factors: Vec<f32> = scales.iter().map(|&s| s as f32).collect();
        Some(BandScale {
            factors: Tensor::from_slice(&factors)
                .view([m as i64, q as i64])
                .to(device),
            median: median as i64,
        })
    }

    /// `quantiles`: [B, H, M, Q].
    fn apply(&self, quantiles: Tensor) -> Tensor {
        let median = quantiles.narrow(3, self.median, 1);
        (quantiles - &median) * &self.factors + median
    }
}

impl Tft {
    pub fn new(p: &nn::Path, shape: &TftShape) -> Tft {
        let d = shape.hidden as i64;
        let e = shape.variable_width() as i64;
        let dr = shape.dropout;
        let lstm = nn::RNNConfig {
            batch_first: true,
            ..Default::default()
        };
        Tft {
            shape: shape.clone(),
            static_vsn: StaticVsn::new(
                p / "static_vsn",
                shape.profiles.len().max(1) as i64,
                shape.static_reals() as i64,
                e,
                d,
                dr,
            ),
            static_selection: Grn::new(p / "static_selection", d, d, d, false, dr),
            static_enrichment: Grn::new(p / "static_enrichment", d, d, d, false, dr),
            static_h: Grn::new(p / "static_h", d, d, d, false, dr),
            static_c: Grn::new(p / "static_c", d, d, d, false, dr),
            encoder_vsn: Vsn::new(p / "encoder_vsn", shape.encoder_vars() as i64, e, d, dr),
            decoder_vsn: Vsn::new(p / "decoder_vsn", shape.decoder_vars() as i64, e, d, dr),
            encoder: nn::lstm(p / "encoder", d, d, lstm),
            decoder: nn::lstm(p / "decoder", d, d, lstm),
            post_lstm: GateAddNorm::new(p / "post_lstm", d, dr),
            enrichment: Grn::new(p / "enrichment", d, d, d, true, dr),
            attention: InterpretableAttention::new(p / "attention", d, shape.heads as i64, dr),
            post_attention: GateAddNorm::new(p / "post_attention", d, dr),
            position_wise: Grn::new(p / "position_wise", d, d, d, false, dr),
            post_ff: GateAddNorm::new(p / "post_ff", d, dr),
            // Zero-initialised: an untrained network forecasts exactly the seasonal median,
            // and training starts from that baseline instead of from random corrections.
            head: nn::linear(
                p / "head",
                d,
                (shape.metrics.len() * shape.quantiles.len()) as i64,
                nn::LinearConfig {
                    ws_init: nn::Init::Const(0.0),
                    bs_init: Some(nn::Init::Const(0.0)),
                    bias: true,
                },
            ),
            level: p.set_group(LEVEL_PATH_GROUP).zeros(
                "level",
                &[
                    shape.horizon_steps as i64,
                    shape.quantiles.len() as i64,
                    shape.residual_steps.len() as i64,
                ],
            ),
            band_scale: BandScale::new(shape, &shape.band_scales, p.device()),
            correction: Correction::new(shape, &shape.correction_scales, p.device()),
        }
    }

    /// See [`super::TftModel::set_correction_scales`]; scales that do not fit the shape
    /// leave the network without a correction.
    pub fn set_correction_scales(&mut self, scales: &[f64]) {
        let device = self.level.device();
        self.shape.correction_scales = scales.to_vec();
        self.correction = Correction::new(&self.shape, scales, device);
    }

    /// See [`super::TftModel::set_band_scales`]; scales that do not fit the shape leave
    /// the network uncalibrated.
    pub fn set_band_scales(&mut self, scales: &[f64]) {
        let device = self.level.device();
        self.shape.band_scales = scales.to_vec();
        self.band_scale = BandScale::new(&self.shape, scales, device);
    }

    /// One forward pass over a batch (see [`Batch`] for the tensors' shapes).
    pub fn forward(&self, batch: &Batch, train: bool) -> TftOutput {
        self.run(batch, train, false)
    }

    /// A forward pass that also returns the attention weights (slower: each head's weights
    /// are materialised).
    pub fn forward_explained(&self, batch: &Batch) -> TftOutput {
        self.run(batch, false, true)
    }

    fn run(&self, batch: &Batch, train: bool, with_attention: bool) -> TftOutput {
        let (past, future) = (&batch.past, &batch.future);
        let (b, t) = (past.size()[0], past.size()[1]);
        let h = future.size()[1];
        let fused = FUSED.load(Ordering::Relaxed);
        let (s, static_weights) =
            self.static_vsn
                .forward(&batch.profile, &batch.static_real, train, fused);
        let c_sel = self.static_selection.forward(&s, None, train, fused);
        let c_enr = self.static_enrichment.forward(&s, None, train, fused);
        let c_h = self.static_h.forward(&s, None, train, fused);
        let c_c = self.static_c.forward(&s, None, train, fused);
        let (enc_in, encoder_weights) = self.encoder_vsn.forward(past, &c_sel, train, fused);
        let (dec_in, decoder_weights) = self.decoder_vsn.forward(future, &c_sel, train, fused);
        let state = nn::LSTMState((c_h.unsqueeze(0), c_c.unsqueeze(0)));
        let (enc_out, state) = self.encoder.seq_init(&enc_in, &state);
        let (dec_out, _) = self.decoder.seq_init(&dec_in, &state);
        let lstm_out = Tensor::cat(&[enc_out, dec_out], 1);
        let vsn_out = Tensor::cat(&[enc_in, dec_in], 1);
        let temporal = self.post_lstm.forward(&lstm_out, &vsn_out, train, fused);
        let enriched = self
            .enrichment
            .forward(&temporal, Some(&c_enr), train, fused);
        let mask = causal_mask(t, h, past.device());
        let queries = enriched.narrow(1, t, h);
        let (attended, attention) =
            self.attention
                .forward(&queries, &enriched, &mask, train, with_attention, fused);
        let attended = self
            .post_attention
            .forward(&attended, &queries, train, fused);
        let ff = self.position_wise.forward(&attended, None, train, fused);
        let out = self
            .post_ff
            .forward(&ff, &temporal.narrow(1, t, h), train, fused);
        // The head learns a correction to seasonal naive: the decoder's inputs carry each
        // metric's value one season before the step (after the time features), and it is
        // added to every quantile, so an untrained network already forecasts seasonally.
        let m = self.shape.metrics.len() as i64;
        let seasonal = future
            .narrow(2, super::features::TIME_FEATURES as i64, m)
            .unsqueeze(-1);
        // The level-correction path: a server running above or below its seasonal pattern
        // right now tends to stay there for a while. Each metric's recent residuals
        // [B, M, R] times weights per forecast step and quantile [H, Q, R] — shared by every
        // metric, so it is learnt from all of them — give a correction that the network
        // would otherwise have to squeeze through its d-wide state for each metric at once.
        // Zero-initialised like the head.
        let level = Tensor::einsum("bmr,hqr->bhmq", &[&batch.recent, &self.level], None::<i64>);
        let quantiles = self
            .head
            .forward(&out)
            .view([b, h, m, self.shape.quantiles.len() as i64])
            + &seasonal
            + level;
        let quantiles = match &self.correction {
            Some(correction) => correction.apply(quantiles, &seasonal),
            None => quantiles,
        };
        let quantiles = match &self.band_scale {
            Some(band) => band.apply(quantiles),
            None => quantiles,
        };
        TftOutput {
            quantiles,
            encoder_weights,
            decoder_weights,
            static_weights,
            attention,
        }
    }
}

/// The optimizer group of the level-correction path's weights, and how much faster than
/// the rest they learn: a handful of regression weights that start at zero and end near
/// 1 in normalised units would otherwise need more Adam steps (each moves them by about
/// the learning rate) than a training run has.
pub const LEVEL_PATH_GROUP: usize = 1;
pub const LEVEL_PATH_LR_SCALE: f64 = 10.0;

/// Pinball loss of every point and quantile, zero where `mask` is 0.
/// `pred`: [B, H, M, Q]; `target`, `mask`: [B, H, M]; returns [B, H, M, Q].
pub fn pinball_points(pred: &Tensor, target: &Tensor, mask: &Tensor, quantiles: &Tensor) -> Tensor {
    let diff = target.unsqueeze(-1) - pred;
    (quantiles * &diff).maximum(&((quantiles - 1.0) * &diff)) * mask.unsqueeze(-1)
}

/// Mean pinball loss over quantiles of the points where `mask` is 1.
/// `pred`: [B, H, M, Q]; `target`, `mask`: [B, H, M].
pub fn pinball_loss(pred: &Tensor, target: &Tensor, mask: &Tensor, quantiles: &Tensor) -> Tensor {
    let points = mask.sum(Kind::Float) * quantiles.size()[0] as f64;
    pinball_points(pred, target, mask, quantiles).sum(Kind::Float) / points.clamp_min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The folded selection (served and trained) computes what the textbook one does on
    /// materialised embeddings, for both per-variable widths (with and without a skip layer).
    #[test]
    fn folded_variable_selection_matches_the_embedding_path() {
        for (e, d) in [(3, 5), (4, 4)] {
            tch::manual_seed(7);
            let vs = nn::VarStore::new(Device::Cpu);
            let vsn = Vsn::new(vs.root() / "vsn", 4, e, d, 0.0);
            let x = Tensor::randn([2, 6, 4], (Kind::Float, Device::Cpu));
            let c = Tensor::randn([2, d], (Kind::Float, Device::Cpu));
            let emb = x.unsqueeze(-1) * &vsn.embed_w + &vsn.embed_b;
            let (expected, expected_weights) = vsn.selection.forward(&emb, Some(&c), false, false);
            let (folded, weights) = vsn.forward(&x, &c, false, false);
            let gap = (folded - expected).abs().max().double_value(&[]);
            assert!(gap < 1e-5, "e {e}, d {d}: outputs differ by {gap}");
            let gap = (weights - expected_weights).abs().max().double_value(&[]);
            assert!(gap < 1e-5, "e {e}, d {d}: weights differ by {gap}");
        }
    }

    /// Forecasts take the fused pass where the CPU has it: the same mix as the tensor
    /// operations, at the default widths (with a skip layer) and at e = d (without one),
    /// over a row count that fills neither a register nor a block, and inputs wide enough
    /// to reach both sides of the ELU and the sigmoid's tails.
    #[test]
    fn fused_variable_selection_matches_the_tensor_operations() {
        if !super::super::fused::selection::available(8, 32) {
            eprintln!("this CPU has no AVX2 and FMA: the fused pass does not run here");
            return;
        }
        for (vars, e, d) in [(24, 8, 32), (5, 4, 4)] {
            tch::manual_seed(11);
            let vs = nn::VarStore::new(Device::Cpu);
            let vsn = Vsn::new(vs.root() / "vsn", vars, e, d, 0.0);
            // Trained-looking layer norms: not the initial scale 1 and shift 0.
            tch::no_grad(|| {
                for g in &vsn.selection.per_var {
                    if let (Some(w), Some(b)) = (&g.norm.ws, &g.norm.bs) {
                        let _ = w.shallow_clone().uniform_(0.5, 1.5);
                        let _ = b.shallow_clone().uniform_(-0.5, 0.5);
                    }
                }
            });
            let x = Tensor::randn([3, 67, vars], (Kind::Float, Device::Cpu)) * 4.0;
            let c = Tensor::randn([3, d], (Kind::Float, Device::Cpu));
            let run = |fused: bool| {
                tch::no_grad(|| {
                    vsn.selection.forward_scalars(
                        &x,
                        &vsn.embed_w,
                        &vsn.embed_b,
                        Some(&c),
                        false,
                        fused,
                    )
                })
            };
            let ((fused, _), (tensors, _)) = (run(true), run(false));
            assert_eq!(fused.size(), tensors.size());
            let gap = (&fused - &tensors).abs().max().double_value(&[]);
            let scale = tensors.abs().max().double_value(&[]);
            assert!(
                gap < 1e-4 * scale.max(1.0),
                "vars {vars}, e {e}, d {d}: fused and tensor paths differ by {gap} (values up to {scale})"
            );
        }
    }

    /// Gives a layer norm trained-looking parameters (not the initial scale 1 and shift 0,
    /// which would hide a wrong sign or index in either).
    fn perturb(norm: &nn::LayerNorm) {
        tch::no_grad(|| {
            if let (Some(w), Some(b)) = (&norm.ws, &norm.bs) {
                let _ = w.shallow_clone().uniform_(0.5, 1.5);
                let _ = b.shallow_clone().uniform_(-0.5, 0.5);
            }
        });
    }

    /// The GRNs' and gate-add-norms' tails in the fused pass give what the tensor
    /// operations give: a GRN with a context (the enrichment), one narrowing to the
    /// selection weights' width (a selection's flat GRN), and a gate-add-norm, over row
    /// counts that are not multiples of anything.
    #[test]
    fn fused_gates_match_the_tensor_operations() {
        if !super::super::fused::gate::available(32, 32) {
            eprintln!("this CPU has no AVX2 and FMA: the fused pass does not run here");
            return;
        }
        let close = |fused: &Tensor, tensors: &Tensor, what: &str| {
            assert_eq!(fused.size(), tensors.size(), "{what}");
            let gap = (fused - tensors).abs().max().double_value(&[]);
            assert!(gap < 1e-4, "{what}: fused and tensor paths differ by {gap}");
        };
        for (input, output, context) in [
            (32, 32, true),
            (32, 24, false),
            (16, 64, true),
            (32, 19, false),
            (8, 5, true),
        ] {
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let grn = Grn::new(vs.root() / "grn", input, input, output, context, 0.0);
            perturb(&grn.norm);
            let x = Tensor::randn([3, 37, input], (Kind::Float, Device::Cpu)) * 2.0;
            let c = Tensor::randn([3, input], (Kind::Float, Device::Cpu));
            let c = context.then_some(&c);
            let run = |fused: bool| tch::no_grad(|| grn.forward(&x, c, false, fused));
            close(&run(true), &run(false), &format!("GRN {input} -> {output}"));
            // The fused pass did run: the tail on its own gives the same numbers.
            let first = tch::no_grad(|| {
                let mut first = grn.fc1.forward(&x);
                if let (Some(layer), Some(c)) = (&grn.context, c) {
                    first += layer.forward(c).unsqueeze(1);
                }
                first
            });
            let residual = tch::no_grad(|| match &grn.skip {
                Some(skip) => skip.forward(&x),
                None => x.shallow_clone(),
            });
            let (weights, bias) = tch::no_grad(|| grn.fc2_and_gate());
            let tail = tch::no_grad(|| {
                gate_add_norm_fused(&first, &residual, (&weights, &bias, &grn.norm), true)
            })
            .expect("the fused pass runs for these widths");
            close(
                &tail,
                &run(false),
                &format!("GRN {input} -> {output}, tail"),
            );
        }
        tch::manual_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let gate = GateAddNorm::new(vs.root() / "gate", 32, 0.0);
        perturb(&gate.norm);
        let x = Tensor::randn([2, 41, 32], (Kind::Float, Device::Cpu)) * 2.0;
        let skip = Tensor::randn([2, 41, 32], (Kind::Float, Device::Cpu));
        // A view with gaps, as the post-feed-forward gate's skip is.
        let skip = Tensor::cat(&[&skip, &skip], 1).narrow(1, 3, 41);
        let run = |fused: bool| tch::no_grad(|| gate.forward(&x, &skip, false, fused));
        close(&run(true), &run(false), "gate-add-norm");
        let gate_weights = (&gate.gate.ws, &bias_or_zeros(&gate.gate), &gate.norm);
        let tail = tch::no_grad(|| gate_add_norm_fused(&x, &skip, gate_weights, false));
        close(&tail.expect("runs"), &run(false), "gate-add-norm, tail");
        // Widths the pass does not take (inputs not a multiple of 8) are left to the
        // tensor operations.
        let narrow = Tensor::randn([2, 41, 12], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([24, 12], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([24], (Kind::Float, Device::Cpu));
        let norm12 = layer_norm(vs.root() / "n12", 12);
        let residual = Tensor::randn([2, 41, 12], (Kind::Float, Device::Cpu));
        assert!(gate_add_norm_fused(&narrow, &residual, (&w, &b, &norm12), true).is_none());
    }

    /// Forecasts' attention in this crate's fused pass gives what libtorch's kernel gives,
    /// for heads one to four registers wide, over lengths that fill no register.
    #[test]
    fn fused_attention_matches_libtorch() {
        if !super::super::fused::attention::available(8) {
            eprintln!("this CPU has no AVX2 and FMA: the fused pass does not run here");
            return;
        }
        // Head widths of one to four registers; lengths (t + h) of 18 (two blocks of
        // keys and a part-block) and 52 (four blocks at a time, two single ones and a part).
        let cases = [
            (32, 4, 13, 5),
            (64, 4, 13, 5),
            (16, 2, 13, 5),
            (32, 4, 45, 7),
        ];
        let more = [(96, 4, 45, 7), (128, 4, 45, 7), (64, 2, 40, 8)];
        for (d, heads, t, h) in cases.into_iter().chain(more) {
            tch::manual_seed(5);
            let vs = nn::VarStore::new(Device::Cpu);
            let attention = InterpretableAttention::new(vs.root() / "attention", d, heads, 0.0);
            let kv = Tensor::randn([3, t + h, d], (Kind::Float, Device::Cpu)) * 2.0;
            let q = kv.narrow(1, t, h);
            let mask = causal_mask(t, h, Device::Cpu);
            let run = |fused: bool| {
                tch::no_grad(|| attention.forward(&q, &kv, &mask, false, false, fused).0)
            };
            let (fused, libtorch) = (run(true), run(false));
            assert_eq!(fused.size(), libtorch.size());
            let gap = (&fused - &libtorch).abs().max().double_value(&[]);
            // Rounding, relative to the outputs' size: the two sum in different orders, and
            // a head four registers wide adds 32 products per score (a 1e-5 bound on its
            // own failed once at 1.07e-5 on outputs of a few units).
            let scale = libtorch.abs().max().double_value(&[]);
            assert!(
                gap < 1e-5 * scale.max(1.0),
                "d {d}, heads {heads}, length {}: outputs differ by {gap} (values up to {scale})",
                t + h
            );
            // A mask other than the decoder's is left to libtorch, which honours it.
            let other = mask.zeros_like();
            let open = tch::no_grad(|| attention.forward(&q, &kv, &other, false, false, true).0);
            let reference =
                tch::no_grad(|| attention.forward(&q, &kv, &other, false, false, false).0);
            let gap = (&open - &reference).abs().max().double_value(&[]);
            assert!(gap < 1e-6, "d {d}: another mask, differ by {gap}");
            assert!((&open - &fused).abs().max().double_value(&[]) > 1e-4);
        }
    }
}
