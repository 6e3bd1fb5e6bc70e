//! The Temporal Fusion Transformer (Lim et al., 2021) in tch: gated residual networks,
//! variable selection, static covariate encoders, an LSTM encoder–decoder, static
//! enrichment, interpretable multi-head attention with a causal mask, a position-wise GRN
//! and one quantile head per metric, whose output is added to the seasonal-naive value.

use super::{Batch, TftShape};
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
            norm: nn::layer_norm(&p / "norm", vec![output], Default::default()),
            dropout,
        }
    }

    /// `x`: [..., input]; `c`: [B, hidden], broadcast over the time axis when `x` has one.
    fn forward(&self, x: &Tensor, c: Option<&Tensor>, train: bool) -> Tensor {
        let mut a = self.fc1.forward(x);
        if let (Some(ctx), Some(c)) = (&self.context, c) {
            let mut c = ctx.forward(c);
            while c.dim() < a.dim() {
                c = c.unsqueeze(1);
            }
            a += c;
        }
        let a = self.fc2.forward(&a.elu()).dropout(self.dropout, train);
        let g = self.gate.forward(&a).glu(-1);
        let residual = match &self.skip {
            Some(s) => s.forward(x),
            None => x.shallow_clone(),
        };
        self.norm.forward(&(g + residual))
    }
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
            norm: nn::layer_norm(&p / "norm", vec![d], Default::default()),
            dropout,
        }
    }

    fn forward(&self, x: &Tensor, skip: &Tensor, train: bool) -> Tensor {
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
    fn forward(&self, emb: &Tensor, c: Option<&Tensor>, train: bool) -> (Tensor, Tensor) {
        let weights = self
            .flat
            .forward(&emb.flatten(-2, -1), c, train)
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
                g.forward(&emb.select(var_axis, i), None, train) * weights.narrow(-1, i, 1)
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
    fn forward(&self, x: &Tensor, c: &Tensor, train: bool) -> (Tensor, Tensor) {
        let emb = x.unsqueeze(-1) * &self.embed_w + &self.embed_b; // [B, T, V, e]
        self.selection.forward(&emb, Some(c), train)
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
    fn forward(&self, profile: &Tensor, reals: &Tensor, train: bool) -> (Tensor, Tensor) {
        let emb = Tensor::cat(
            &[
                self.profile.forward(profile).unsqueeze(1),
                reals.unsqueeze(-1) * &self.embed_w + &self.embed_b,
            ],
            1,
        ); // [B, V, e]
        self.selection.forward(&emb, None, train)
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
    /// hidden). Returns ([B, H, d], weights averaged over heads [B, H, T+H]).
    fn forward(&self, q: &Tensor, kv: &Tensor, mask: &Tensor, train: bool) -> (Tensor, Tensor) {
        let v = self.value.forward(kv);
        let scale = (self.head_dim as f64).sqrt();
        let mut outputs = Vec::new();
        let mut weights = Vec::new();
        for (wq, wk) in self.queries.iter().zip(&self.keys) {
            let scores = wq.forward(q).matmul(&wk.forward(kv).transpose(1, 2)) / scale;
            let attn = scores
                .masked_fill(mask, f64::NEG_INFINITY)
                .softmax(-1, Kind::Float);
            let attn = attn.dropout(self.dropout, train);
            outputs.push(attn.matmul(&v));
            weights.push(attn);
        }
        let avg = Tensor::stack(&outputs, 0).mean_dim(0, false, Kind::Float);
        let w = Tensor::stack(&weights, 0).mean_dim(0, false, Kind::Float);
        (self.out.forward(&avg), w)
    }
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
    /// Attention of each decoder step over all positions [B, H, T+H].
    pub attention: Tensor,
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
        }
    }

    /// One forward pass over a batch (see [`Batch`] for the tensors' shapes).
    pub fn forward(&self, batch: &Batch, train: bool) -> TftOutput {
        let (past, future) = (&batch.past, &batch.future);
        let (b, t) = (past.size()[0], past.size()[1]);
        let h = future.size()[1];
        let (s, static_weights) =
            self.static_vsn
                .forward(&batch.profile, &batch.static_real, train);
        let c_sel = self.static_selection.forward(&s, None, train);
        let c_enr = self.static_enrichment.forward(&s, None, train);
        let c_h = self.static_h.forward(&s, None, train);
        let c_c = self.static_c.forward(&s, None, train);
        let (enc_in, encoder_weights) = self.encoder_vsn.forward(past, &c_sel, train);
        let (dec_in, decoder_weights) = self.decoder_vsn.forward(future, &c_sel, train);
        let state = nn::LSTMState((c_h.unsqueeze(0), c_c.unsqueeze(0)));
        let (enc_out, state) = self.encoder.seq_init(&enc_in, &state);
        let (dec_out, _) = self.decoder.seq_init(&dec_in, &state);
        let lstm_out = Tensor::cat(&[enc_out, dec_out], 1);
        let vsn_out = Tensor::cat(&[enc_in, dec_in], 1);
        let temporal = self.post_lstm.forward(&lstm_out, &vsn_out, train);
        let enriched = self.enrichment.forward(&temporal, Some(&c_enr), train);
        // Decoder step i sits at position t + i and sees positions 0 ..= t + i.
        let positions = Tensor::arange(t + h, (Kind::Int64, past.device()));
        let query_pos = Tensor::arange(h, (Kind::Int64, past.device())) + t;
        let mask = positions.unsqueeze(0).gt_tensor(&query_pos.unsqueeze(1));
        let queries = enriched.narrow(1, t, h);
        let (attended, attention) = self.attention.forward(&queries, &enriched, &mask, train);
        let attended = self.post_attention.forward(&attended, &queries, train);
        let ff = self.position_wise.forward(&attended, None, train);
        let out = self.post_ff.forward(&ff, &temporal.narrow(1, t, h), train);
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
            + seasonal
            + level;
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

/// Mean pinball loss over quantiles of the points where `mask` is 1.
/// `pred`: [B, H, M, Q]; `target`, `mask`: [B, H, M].
pub fn pinball_loss(pred: &Tensor, target: &Tensor, mask: &Tensor, quantiles: &Tensor) -> Tensor {
    let diff = target.unsqueeze(-1) - pred; // [B, H, M, Q]
    let loss = (quantiles * &diff).maximum(&((quantiles - 1.0) * &diff));
    let masked = loss * mask.unsqueeze(-1);
    let points = mask.sum(Kind::Float) * quantiles.size()[0] as f64;
    masked.sum(Kind::Float) / points.clamp_min(1.0)
}
