#!/usr/bin/env python3
"""wgtrain checkpoints and Python, both ways, checked to 1e-5.

Usage: interop.py WGTRAIN_BINARY WORK_DIR

1. wgtrain -> Python: train a small model with wgtrain, open its checkpoint with the
   `safetensors` and `numpy` packages, run the forward pass in numpy from those arrays alone,
   and require the same probabilities as `wgtrain predict`.
2. Python -> wgtrain: build the weights of a PyTorch-style stack
   `nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))` (tensor names `0.weight`,
   `0.bias`, `2.weight`, `2.bias`; weights `[out, in]`), convert them with the mapping below,
   and require `wgtrain predict` to give numpy's outputs.
3. Where `torch` is importable: the checkpoint of 1 loaded into an `nn.Sequential` of
   `nn.Linear` layers gives wgtrain's predictions; and an `nn.Sequential` saved with
   `safetensors.torch.save_file(model.state_dict(), path)` is read by `wgtrain predict --model
   path --output-activation softmax` directly (see src/torch.rs), giving torch's outputs.

4. wgtrain -> Python for the layer stack: a model with PReLU, BatchNormalization, Dropout and
   Maxout, rebuilt in numpy layer by layer from the checkpoint (the config lists each layer's
   kind), gives `wgtrain predict`'s probabilities; where torch is importable, the same model as
   `nn.Linear`, `nn.PReLU`, `nn.BatchNorm1d` and `nn.Dropout` in eval mode does too.

5. Where `torch` is importable, convolutional networks both ways: a CNN trained by wgtrain
   (Conv2D 'same' and strided 'valid', max pooling, Flatten, Dense) rebuilt as `nn.Conv2d`,
   `nn.MaxPool2d`, `nn.Flatten` and `nn.Linear` gives `wgtrain predict`'s probabilities; and
   a torch network of that shape with its own initial weights, converted into a wgtrain
   checkpoint, gives torch's outputs from `wgtrain predict`.

The name mapping from a PyTorch `nn.Linear` stack to wgtrain:
    dense_{i}.weight = <linear i>.weight.T      ([in, out]: wgtrain computes x @ W + b)
    dense_{i}.bias   = <linear i>.bias
Layers are numbered per kind (dense_0, dense_1, batchnorm_0, ...). A BatchNormalization is
PyTorch's `nn.BatchNorm1d(units, eps=1e-3, momentum=0.01)`:
    batchnorm_{k}.gamma = .weight, batchnorm_{k}.beta = .bias,
    batchnorm_{k}.moving_mean = .running_mean, batchnorm_{k}.moving_variance = .running_var
(Keras' momentum 0.99 weighs the old value, PyTorch's 0.1 default the new batch, so 0.99 is
PyTorch's 0.01; PyTorch's eps defaults to 1e-5, Keras' to 1e-3; and PyTorch averages the
unbiased batch variance where Keras averages the biased one, which matters only in training.)
A PReLU is `nn.PReLU(units)` with `prelu_{k}.alpha = .weight`. A Conv2D is `nn.Conv2d(in,
filters, kernel, stride, padding)` on channels-first images (wgtrain's rows are channels-last
images, `(y, x, c)` in row-major order):
    conv2d_{k}.kernel = .weight.permute(2, 3, 1, 0)   ([kh, kw, in, filters] from [out, in, kh, kw])
    conv2d_{k}.bias   = .bias
'same' with an odd kernel and stride 1 is `padding=kh // 2`; other 'same' windows pad more
after than before (TensorFlow's rule), which `nn.Conv2d` cannot say: pad with `F.pad` first.
A Dense after Flatten reads the features in (y, x, c) order, torch's `nn.Flatten` in
(c, y, x): its weight's rows are permuted accordingly (see `flatten_order` below).
plus the metadata `wgtrain.config` (JSON: input width, layers with activations, loss,
optimizer), `wgtrain.epoch` and `wgtrain.step`; see src/checkpoint.rs.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

TOLERANCE = 1e-5


def run(*args):
    result = subprocess.run(list(args), capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"FAILED: {' '.join(args)}\n{result.stderr}")
    return result.stdout


def activation(name, z):
    if name == "linear":
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    sys.exit(f"FAILED: this script does not implement activation {name}")


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check(what, got, want):
    err = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want)))
    print(f"{what}: max abs difference {err:.2e} over {np.size(want)} values")
    if not err <= TOLERANCE:
        sys.exit(f"FAILED: {what} differs by {err} > {TOLERANCE}")


def main():
    wgtrain, work = sys.argv[1], Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)

    # A 3-class problem on 6 features; the label is the largest of three linear scores.
    x = rng.normal(size=(300, 6))
    y = np.argmax(x @ rng.normal(size=(6, 3)), axis=1)
    header = ",".join(f"f{i}" for i in range(6))
    np.savetxt(work / "train.csv", np.column_stack([x, y]), delimiter=",", header=header + ",label",
               comments="", fmt=["%.8f"] * 6 + ["%d"])
    np.savetxt(work / "features.csv", x[:50], delimiter=",", header=header, comments="", fmt="%.8f")

    # 1. wgtrain -> Python.
    model = work / "wgtrain.safetensors"
    run(wgtrain, "train", "--data", str(work / "train.csv"), "--layers", "16", "--activation", "tanh",
        "--epochs", "3", "--standardize", "--backend", "cpu", "--verbose", "0", "--save", str(model))
    run(wgtrain, "predict", "--model", str(model), "--data", str(work / "features.csv"),
        "--out", str(work / "predictions.csv"), "--backend", "cpu")
    with safe_open(str(model), framework="numpy") as f:
        config = json.loads(f.metadata()["wgtrain.config"])
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    print(f"opened {model.name}: {len(tensors)} tensors, layers {config['layers']}")
    a = (x[:50] - tensors["standardize.mean"]) / tensors["standardize.std"]
    for i, layer in enumerate(config["layers"]):
        w, b = tensors[f"dense_{i}.weight"], tensors[f"dense_{i}.bias"]
        assert w.dtype == np.float32 and w.shape == (a.shape[1], layer["units"]), (w.dtype, w.shape)
        a = activation(layer["activation"], a @ w.astype(np.float64) + b)
    predicted = np.loadtxt(work / "predictions.csv", delimiter=",", skiprows=1)
    check("wgtrain checkpoint, numpy forward vs wgtrain predict", predicted[:, 1:], softmax(a))

    # 2. Python -> wgtrain: a PyTorch-layout nn.Linear stack.
    torch_style = {
        "0.weight": rng.normal(scale=0.5, size=(16, 6)).astype(np.float32),
        "0.bias": rng.normal(scale=0.1, size=(16,)).astype(np.float32),
        "2.weight": rng.normal(scale=0.5, size=(3, 16)).astype(np.float32),
        "2.bias": rng.normal(scale=0.1, size=(3,)).astype(np.float32),
    }
    save_file(torch_style, str(work / "torch_style.safetensors"))
    converted = {
        "dense_0.weight": np.ascontiguousarray(torch_style["0.weight"].T),
        "dense_0.bias": torch_style["0.bias"],
        "dense_1.weight": np.ascontiguousarray(torch_style["2.weight"].T),
        "dense_1.bias": torch_style["2.bias"],
    }
    config = {
        "format": "wgtrain-checkpoint-1",
        "input_dim": 6,
        "layers": [{"units": 16, "activation": "relu"}, {"units": 3, "activation": "linear"}],
        "loss": {"sparse_categorical_crossentropy": {"from_logits": True}},
        "optimizer": {"sgd": {"lr": 0.01}},
        "metrics": ["accuracy"],
        "seed": 0,
    }
    metadata = {"wgtrain.config": json.dumps(config), "wgtrain.epoch": "0", "wgtrain.step": "0"}
    save_file(converted, str(work / "from_torch.safetensors"), metadata=metadata)
    out = json.loads(run(wgtrain, "predict", "--model", str(work / "from_torch.safetensors"),
                         "--data", str(work / "features.csv"), "--backend", "cpu", "--json"))
    t = torch_style
    logits = np.maximum(x[:50] @ t["0.weight"].T.astype(np.float64) + t["0.bias"], 0.0) @ t["2.weight"].T + t["2.bias"]
    check("PyTorch-layout weights, numpy forward vs wgtrain predict", out["predictions"], softmax(logits))
    # 4. The layer stack, wgtrain -> numpy.
    stack = work / "stack.safetensors"
    run(wgtrain, "train", "--data", str(work / "train.csv"), "--layers",
        "16:prelu,batchnorm,dropout:0.3,maxout:8:2,activation:tanh,8", "--epochs", "4",
        "--standardize", "--backend", "cpu", "--verbose", "0", "--save", str(stack))
    run(wgtrain, "predict", "--model", str(stack), "--data", str(work / "features.csv"),
        "--out", str(work / "stack_predictions.csv"), "--backend", "cpu")
    stack_config = config_of(stack)
    with safe_open(str(stack), framework="numpy") as f:
        stack_tensors = {name: f.get_tensor(name) for name in f.keys()}
    inputs = (x[:50] - stack_tensors["standardize.mean"]) / stack_tensors["standardize.std"]
    stack_predicted = np.loadtxt(work / "stack_predictions.csv", delimiter=",", skiprows=1)[:, 1:]
    check("layer stack (PReLU, BatchNormalization, Dropout, Maxout), numpy forward vs wgtrain predict",
          stack_predicted, softmax(forward_numpy(stack_config, stack_tensors, inputs)))

    # 3. With PyTorch itself, where it is installed: nn.Sequential models both ways.
    try:
        import torch
        from safetensors.torch import save_file as torch_save_file
    except ImportError:
        print("torch: not importable; the PyTorch checks did not run (the numpy checks above did)")
    else:
        torch_checks(wgtrain, work, x, model, tensors, config_of(model))
        torch_stack_check(stack_config, stack_tensors, inputs, stack_predicted)
        torch_cnn_checks(wgtrain, work, rng)
    print("interop OK")


def named(config):
    """Each layer of a wgtrain config with its checkpoint prefix, numbered per kind."""
    counts = {}
    for layer in config["layers"]:
        kind = layer["kind"]
        k = counts.get(kind, 0)
        counts[kind] = k + 1
        yield layer, f"{kind}_{k}"


def forward_numpy(config, tensors, a):
    """The inference forward pass of a wgtrain checkpoint, layer by layer, in float64."""
    a = a.astype(np.float64)
    for layer, name in named(config):
        t = lambda p: tensors[f"{name}.{p}"].astype(np.float64)
        kind = layer["kind"]
        if kind == "dense":
            a = activation(layer["activation"], a @ t("weight") + t("bias"))
        elif kind == "prelu":
            a = np.where(a > 0, a, t("alpha") * a)
        elif kind == "batchnorm":
            a = t("gamma") * (a - t("moving_mean")) / np.sqrt(t("moving_variance") + layer["epsilon"]) + t("beta")
        elif kind == "dropout":
            pass  # inference: the identity
        elif kind == "maxout":
            z = a @ t("weight") + t("bias")
            a = z.reshape(z.shape[0], layer["units"], layer["pieces"]).max(axis=2)
        elif kind == "activation":
            a = activation(layer["activation"], a)
        else:
            sys.exit(f"FAILED: this script does not implement layer kind {kind}")
    return a


def Maxout(linear, units, pieces):
    """A maxout as PyTorch has none: a Linear to units · pieces, each unit's pieces side by side."""
    import torch

    class MaxoutModule(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = linear

        def forward(self, x):
            z = self.linear(x)
            return z.view(z.shape[0], units, pieces).max(dim=2).values

    return MaxoutModule()


def torch_stack_check(config, tensors, inputs, predicted):
    """The layer stack as PyTorch modules (eval mode) with the mapping in the docstring."""
    import torch

    modules = []
    for layer, name in named(config):
        t = lambda p: torch.from_numpy(np.ascontiguousarray(tensors[f"{name}.{p}"]))
        kind = layer["kind"]
        if kind == "dense":
            w = t("weight")
            m = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                m.weight.copy_(w.T)
                m.bias.copy_(t("bias"))
            modules.append(m)
            if layer["activation"] != "linear":
                modules.append({"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[layer["activation"]]())
        elif kind == "prelu":
            m = torch.nn.PReLU(t("alpha").shape[0])
            with torch.no_grad():
                m.weight.copy_(t("alpha"))
            modules.append(m)
        elif kind == "batchnorm":
            m = torch.nn.BatchNorm1d(t("gamma").shape[0], eps=layer["epsilon"], momentum=1 - layer["momentum"])
            with torch.no_grad():
                m.weight.copy_(t("gamma"))
                m.bias.copy_(t("beta"))
                m.running_mean.copy_(t("moving_mean"))
                m.running_var.copy_(t("moving_variance"))
            modules.append(m)
        elif kind == "dropout":
            modules.append(torch.nn.Dropout(layer["rate"]))
        elif kind == "activation":
            modules.append({"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[layer["activation"]]())
        elif kind == "maxout":
            w = t("weight")
            linear = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                linear.weight.copy_(w.T)
                linear.bias.copy_(t("bias"))
            modules.append(Maxout(linear, layer["units"], layer["pieces"]))
        else:
            sys.exit(f"FAILED: no torch module for layer kind {kind}")
    net = torch.nn.Sequential(*modules).double().eval()
    with torch.no_grad():
        probs = torch.softmax(net(torch.from_numpy(inputs)), dim=1).numpy()
    check("torch: layer stack as Linear/PReLU/BatchNorm1d/Dropout (eval) vs wgtrain predict", predicted, probs)


def config_of(path):
    with safe_open(str(path), framework="numpy") as f:
        return json.loads(f.metadata()["wgtrain.config"])


def torch_checks(wgtrain, work, x, model_path, tensors, config):
    import torch
    from safetensors.torch import save_file as torch_save_file

    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
    # a. wgtrain -> torch: the checkpoint's layers as nn.Linear, each weight transposed.
    modules = []
    for i, layer in enumerate(config["layers"]):
        w = tensors[f"dense_{i}.weight"]
        linear = torch.nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            linear.bias.copy_(torch.from_numpy(tensors[f"dense_{i}.bias"]))
        modules.append(linear)
        if layer["activation"] != "linear":
            modules.append(acts[layer["activation"]]())
    net = torch.nn.Sequential(*modules).double()
    inputs = (x[:50] - tensors["standardize.mean"]) / tensors["standardize.std"]
    with torch.no_grad():
        probs = torch.softmax(net(torch.from_numpy(inputs)), dim=1).numpy()
    predicted = np.loadtxt(work / "predictions.csv", delimiter=",", skiprows=1)
    check("torch: wgtrain checkpoint in nn.Sequential vs wgtrain predict", predicted[:, 1:], probs)

    # b. torch -> wgtrain: a state_dict saved by safetensors.torch, read by predict directly.
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8),
                              torch.nn.ReLU(), torch.nn.Linear(8, 3))
    path = work / "torch_model.safetensors"
    torch_save_file(net.state_dict(), str(path))
    out = json.loads(run(wgtrain, "predict", "--model", str(path), "--data", str(work / "features.csv"),
                         "--output-activation", "softmax", "--backend", "cpu", "--json"))
    with torch.no_grad():
        want = torch.softmax(net.double()(torch.from_numpy(x[:50])), dim=1).numpy()
    check("torch: state_dict (0.weight, 0.bias, 2.weight, ...) read by wgtrain predict", out["predictions"], want)
    print(f"torch {torch.__version__}: the PyTorch checks ran")


def flatten_order(shape):
    """For a (h, w, c) feature map: the channels-last index of each channels-first feature."""
    h, w, c = shape
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)


def torch_cnn(config, tensors):
    """A wgtrain CNN config and its tensors as torch modules, with the mapping above."""
    import torch

    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
    modules, shape, flattened = [], None, None
    for layer, name in named(config):
        t = lambda p: torch.from_numpy(np.ascontiguousarray(tensors[f"{name}.{p}"]))
        kind = layer["kind"]
        if kind == "conv2d":
            k = t("kernel")  # [kh, kw, in, filters]
            kh, kw, cin, f = k.shape
            if layer["padding"] == "same":
                assert layer["strides"] == [1, 1] and kh % 2 == 1 and kw % 2 == 1, layer
                padding = (kh // 2, kw // 2)
            else:
                padding = (0, 0)
            m = torch.nn.Conv2d(cin, f, (kh, kw), stride=tuple(layer["strides"]), padding=padding)
            with torch.no_grad():
                m.weight.copy_(k.permute(3, 2, 0, 1))
                m.bias.copy_(t("bias"))
            modules.append(m)
            if layer["activation"] != "linear":
                modules.append(acts[layer["activation"]]())
            h, w, _ = layer["input"]
            sh, sw = layer["strides"]
            shape = ((h + 2 * padding[0] - kh) // sh + 1, (w + 2 * padding[1] - kw) // sw + 1, f)
        elif kind == "max_pooling2d":
            modules.append(torch.nn.MaxPool2d(tuple(layer["pool_size"]), tuple(layer["strides"])))
            h, w, c = layer["input"]
            (ph, pw), (sh, sw) = layer["pool_size"], layer["strides"]
            shape = ((h - ph) // sh + 1, (w - pw) // sw + 1, c)
        elif kind == "flatten":
            modules.append(torch.nn.Flatten())
            flattened = shape
        elif kind == "dense":
            w = tensors[f"{name}.weight"]
            if flattened is not None:
                w, flattened = w[flatten_order(flattened)], None
            m = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                m.bias.copy_(t("bias"))
            modules.append(m)
            if layer["activation"] != "linear":
                modules.append(acts[layer["activation"]]())
        else:
            sys.exit(f"FAILED: no torch module for layer kind {kind}")
    return torch.nn.Sequential(*modules).double().eval()


def channels_first(rows, shape):
    """Rows of channels-last images as a torch batch [N, C, H, W]."""
    import torch

    h, w, c = shape
    return torch.from_numpy(np.ascontiguousarray(rows.reshape(-1, h, w, c).transpose(0, 3, 1, 2)))


def torch_cnn_checks(wgtrain, work, rng):
    import torch

    # 10×10 one-channel images; the label is the largest of three linear scores.
    shape = (10, 10, 1)
    x = rng.uniform(size=(240, 100))
    y = np.argmax(x @ rng.normal(size=(100, 3)), axis=1)
    header = ",".join(f"p{i}" for i in range(100))
    np.savetxt(work / "images.csv", np.column_stack([x, y]), delimiter=",", header=header + ",label",
               comments="", fmt=["%.8f"] * 100 + ["%d"])
    np.savetxt(work / "image_features.csv", x[:40], delimiter=",", header=header, comments="", fmt="%.8f")

    # a. wgtrain -> torch.
    cnn = work / "cnn.safetensors"
    run(wgtrain, "train", "--data", str(work / "images.csv"), "--input-shape", "10,10,1", "--layers",
        "conv:4:3:same:relu,maxpool:2,conv:6:3:s2:valid:tanh,flatten,5:relu", "--epochs", "3",
        "--backend", "cpu", "--verbose", "0", "--save", str(cnn))
    run(wgtrain, "predict", "--model", str(cnn), "--data", str(work / "image_features.csv"),
        "--out", str(work / "cnn_predictions.csv"), "--backend", "cpu")
    config = config_of(cnn)
    with safe_open(str(cnn), framework="numpy") as f:
        tensors = {name: f.get_tensor(name) for name in f.keys() if not name.startswith("optimizer.")}
    net = torch_cnn(config, tensors)
    with torch.no_grad():
        probs = torch.softmax(net(channels_first(x[:40], shape)), dim=1).numpy()
    predicted = np.loadtxt(work / "cnn_predictions.csv", delimiter=",", skiprows=1)[:, 1:]
    check("torch: wgtrain CNN as Conv2d/MaxPool2d/Flatten/Linear vs wgtrain predict", predicted, probs)

    # b. torch -> wgtrain: the same shape of network with torch's own initial weights.
    torch.manual_seed(1)
    convs = [torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Conv2d(4, 6, 3, stride=2)]
    linears = [torch.nn.Linear(24, 5), torch.nn.Linear(5, 3)]
    net = torch.nn.Sequential(convs[0], torch.nn.ReLU(), torch.nn.MaxPool2d(2), convs[1], torch.nn.Tanh(),
                              torch.nn.Flatten(), linears[0], torch.nn.ReLU(), linears[1]).double().eval()
    converted = {}
    for i, m in enumerate(convs):
        converted[f"conv2d_{i}.kernel"] = m.weight.detach().float().permute(2, 3, 1, 0).contiguous().numpy()
        converted[f"conv2d_{i}.bias"] = m.bias.detach().float().numpy()
    # The first Linear reads torch's (c, y, x) features: its columns back in (y, x, c) order.
    back = np.argsort(flatten_order((2, 2, 6)))
    for i, m in enumerate(linears):
        w = m.weight.detach().float().numpy().T
        converted[f"dense_{i}.weight"] = np.ascontiguousarray(w[back] if i == 0 else w)
        converted[f"dense_{i}.bias"] = m.bias.detach().float().numpy()
    # Plain SGD: a converted model has no optimizer state (Adam's moments) to carry.
    config = dict(config, optimizer={"sgd": {"lr": 0.01}})
    metadata = {"wgtrain.config": json.dumps(config), "wgtrain.epoch": "0", "wgtrain.step": "0"}
    save_file(converted, str(work / "cnn_from_torch.safetensors"), metadata=metadata)
    out = json.loads(run(wgtrain, "predict", "--model", str(work / "cnn_from_torch.safetensors"),
                         "--data", str(work / "image_features.csv"), "--backend", "cpu", "--json"))
    with torch.no_grad():
        want = torch.softmax(net(channels_first(x[:40], shape)), dim=1).numpy()
    check("torch: nn.Conv2d network converted to a wgtrain checkpoint, wgtrain predict vs torch", out["predictions"], want)


if __name__ == "__main__":
    main()
