# bench/ort_profile.py groups both engines' operators the same way; a convolution's group comes
# from Lenz's layer spec on one side and from ONNX Runtime's input shapes on the other.
import importlib.util

from conftest import ROOT

spec = importlib.util.spec_from_file_location("ort_profile", ROOT / "bench" / "ort_profile.py")
ort_profile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ort_profile)


def lenz_layer(text):
    return {"spec": text, "ms": 1.0, "layer": 0, "folded": ""}


def ort_node(op, *shapes):
    return {"args": {"op_name": op, "input_type_shape": [{"float": s} for s in shapes]}}


def test_lenz_layers_fall_into_the_groups_of_onnx_runtime_nodes():
    cases = [
        ("conv 64 1x1 nobias", ort_node("Conv", [1, 32, 56, 56], [64, 32, 1, 1]), "conv 1x1"),
        ("conv 64 3x3 padding=1", ort_node("FusedConv", [1, 64, 56, 56], [64, 64, 3, 3], [64]), "conv 3x3"),
        ("conv 96 5x5 padding=2 groups=96 nobias", ort_node("Conv", [1, 96, 14, 14], [96, 1, 5, 5]),
         "conv depthwise 5x5"),
        ("conv 256 3x3 padding=1 groups=8", ort_node("Conv", [1, 256, 28, 28], [256, 32, 3, 3]),
         "conv grouped 3x3"),
        ("maxpool 3x3 stride=2", ort_node("MaxPool", [1, 64, 112, 112]), "pooling"),
        ("globalavgpool", ort_node("GlobalAveragePool", [1, 512, 7, 7]), "pooling"),
        ("concat a b", ort_node("Concat", [1, 64, 7, 7], [1, 64, 7, 7]), "concat, slice"),
        ("silu", ort_node("QuickGelu", [1, 64, 7, 7]), "activation"),
        ("dense 1000", ort_node("Gemm", [1, 512], [1000, 512]), "dense"),
    ]
    for lenz_spec, node, group in cases:
        assert ort_profile.lenz_group(lenz_layer(lenz_spec)) == group, lenz_spec
        assert ort_profile.ort_group(node) == group, node


def test_onnx_runtime_reorders_are_layout_and_unknown_operators_keep_their_name():
    assert ort_profile.ort_group(ort_node("ReorderInput", [1, 64, 7, 7])) == "layout"
    assert ort_profile.ort_group(ort_node("Resize", [1, 64, 7, 7])) == "Resize"
