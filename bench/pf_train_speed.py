"""Training speed of pytorch-forecasting's TemporalFusionTransformer on ASD windows, for
`cargo bench -p nordiq-model --bench train_speed` (which runs this and compares).

The same windows and sizes as NordIQ's TFT: 12 ASD servers (train split), 19 metrics as
targets and observed inputs, 5 known time features and each metric's seasonal median as
known inputs, encoder 288, horizon 96, hidden 32, 4 heads, per-variable width 8,
quantiles 0.1/0.5/0.9, dropout 0.1, batch 64, `--threads` CPU threads. An epoch is
`--batches` batches (2,048 windows at the defaults), as NordIQ's is `--max-windows`.
Prints one JSON line: seconds per epoch (the second epoch; the first warms up), windows.
"""
import argparse, glob, json, math, os, sys, time

import numpy as np
import pandas as pd
import torch

p = argparse.ArgumentParser()
p.add_argument("--data", required=True, help="folder with omi-*.csv")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batches", type=int, default=32)
p.add_argument("--epochs", type=int, default=2)
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(42)

import lightning.pytorch as pl
from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet
from pytorch_forecasting.data.encoders import EncoderNormalizer, MultiNormalizer
from pytorch_forecasting.metrics import MultiLoss, QuantileLoss

S, H, T = 288, 96, 288
metrics = [f"m{i:02d}" for i in range(1, 20)]
frames = []
for path in sorted(glob.glob(os.path.join(args.data, "omi-*.csv"))):
    df = pd.read_csv(path, parse_dates=["timestamp"])
    df = df[df.split == "train"].reset_index(drop=True)
    df[metrics] = df[metrics].ffill().bfill().astype("float32")
    # Each metric's seasonal median (7 days), known at forecast time, as NordIQ's decoder reads.
    for m in metrics:
        lagged = np.stack([df[m].shift(k * S).to_numpy() for k in range(1, 8)])
        df[f"{m}_seasonal"] = np.nan_to_num(np.nanmedian(lagged, axis=0), nan=float(df[m].mean())).astype("float32")
    tod = (df.timestamp.dt.hour * 60 + df.timestamp.dt.minute) / 1440.0
    dow = df.timestamp.dt.dayofweek / 7.0
    df["tod_sin"], df["tod_cos"] = np.sin(2 * math.pi * tod), np.cos(2 * math.pi * tod)
    df["dow_sin"], df["dow_cos"] = np.sin(2 * math.pi * dow), np.cos(2 * math.pi * dow)
    df["weekend"] = (df.timestamp.dt.dayofweek >= 5).astype("float32")
    df["time_idx"] = np.arange(len(df))
    frames.append(df)
data = pd.concat(frames, ignore_index=True)
known = ["tod_sin", "tod_cos", "dow_sin", "dow_cos", "weekend"] + [f"{m}_seasonal" for m in metrics]
dataset = TimeSeriesDataSet(
    data,
    time_idx="time_idx",
    target=metrics,
    group_ids=["server_name"],
    max_encoder_length=T,
    min_encoder_length=T,
    max_prediction_length=H,
    min_prediction_length=H,
    static_categoricals=["server_name"],
    time_varying_known_reals=known,
    time_varying_unknown_reals=metrics,
    target_normalizer=MultiNormalizer([EncoderNormalizer() for _ in metrics]),
    add_encoder_length=False,
)
loader = dataset.to_dataloader(train=True, batch_size=64, num_workers=0)
model = TemporalFusionTransformer.from_dataset(
    dataset,
    hidden_size=32,
    attention_head_size=4,
    hidden_continuous_size=8,
    dropout=0.1,
    output_size=[3] * len(metrics),
    loss=MultiLoss([QuantileLoss(quantiles=[0.1, 0.5, 0.9]) for _ in metrics]),
    learning_rate=1e-3,
    log_interval=-1,
)


class EpochTimer(pl.Callback):
    def __init__(self):
        self.times = []

    def on_train_epoch_start(self, trainer, module):
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.times.append(time.perf_counter() - self.started)
        print(f"pytorch-forecasting: epoch {len(self.times)}: {self.times[-1]:.1f} s", file=sys.stderr)


timer = EpochTimer()
trainer = pl.Trainer(
    max_epochs=args.epochs,
    accelerator="cpu",
    limit_train_batches=args.batches,
    limit_val_batches=0,
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    callbacks=[timer],
    gradient_clip_val=1.0,
)
trainer.fit(model, train_dataloaders=loader)
print(json.dumps({
    "seconds_per_epoch": timer.times[-1],
    "epochs": timer.times,
    "windows_per_epoch": args.batches * 64,
    "parameters": sum(p.numel() for p in model.parameters()),
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
}))
