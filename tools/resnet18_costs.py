#!/usr/bin/python3
"""ResNet-18's costs counted independently of Lenz, over torchvision's own modules.

Run from the repository root:  /usr/bin/python3 tools/resnet18_costs.py
(Debian's python3-torch and python3-torchvision.) It prints what `lenz summary models/resnet18.lenz`
must agree with; tests/analysis/resnet18_test.cpp holds the figures.

The graph comes from torch.fx (every module call and every `+`), in PyTorch's execution order, and
each tensor's size from running it once on a 1x3x224x224 input. The rules are the course notes':
- parameters: sum(p.numel()) over trainable tensors; running statistics apart;
- multiplications: convolutions out_elements * (in_channels / groups * kh * kw), linear in * out, and
  batch norm one per output value (its scale);
- one prediction (textbook): walk the nodes in order; a tensor lives from the node that makes it to
  the last node that reads it; at each node add up the living tensors (its inputs and its output
  included); take the largest sum and add the parameter bytes. In-place ReLUs, `out += identity`
  and flatten allocate nothing;
- training one image (textbook): the input and every node's output except views (flatten) and
  ReLUs that torchvision applies in place after an addition (Lenz fuses those into the add), plus
  parameters and one gradient per trainable parameter.
"""
import operator

import torch
import torch.fx
import torchvision

model = torchvision.models.resnet18().eval()
graph = torch.fx.symbolic_trace(model)
modules = dict(graph.named_modules())

sizes = {}


class Recorder(torch.fx.Interpreter):
    def run_node(self, n):
        out = super().run_node(n)
        sizes[n.name] = out.numel() if isinstance(out, torch.Tensor) else 0
        return out


Recorder(graph).run(torch.zeros(1, 3, 224, 224))
nodes = [n for n in graph.graph.nodes if n.op != "output"]

params = sum(p.numel() for p in model.parameters())
statistics = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))

macs = conv_fc = 0
for n in nodes:
    if n.op != "call_module":
        continue
    m = modules[n.target]
    if isinstance(m, torch.nn.Conv2d):
        k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        conv_fc += sizes[n.name] * k
    elif isinstance(m, torch.nn.Linear):
        conv_fc += m.in_features * m.out_features
    elif isinstance(m, torch.nn.BatchNorm2d):
        macs += sizes[n.name]
macs += conv_fc


def is_add(n):
    return n.op == "call_function" and n.target in (operator.add, operator.iadd)


def allocates(n):
    if n.op == "call_function" and n.target is torch.flatten:
        return False
    if n.op == "call_module" and isinstance(modules[n.target], torch.nn.ReLU):
        return False  # torchvision's ReLUs are in place
    if is_add(n):
        return False  # `out += identity`: into the branch's output
    return True


# Where each tensor's memory comes from: an in-place node or a view hands on its input's.
owner = {}
for n in nodes:
    owner[n.name] = n.name if n.op == "placeholder" or allocates(n) else owner[n.args[0].name]
last_read = {}
for i, n in enumerate(nodes):
    for a in n.all_input_nodes:
        last_read[owner[a.name]] = i
peak = 0
for i, n in enumerate(nodes):
    living = {owner[m.name] for m in nodes[: i + 1] if last_read.get(owner[m.name], len(nodes)) >= i}
    peak = max(peak, sum(sizes[name] for name in living))
inference = 4 * (peak + params + statistics)


def kept_for_training(n):
    if n.op == "call_function" and n.target is torch.flatten:
        return False
    # the ReLU after `out += identity` is the add's fused activation in Lenz
    if n.op == "call_module" and isinstance(modules[n.target], torch.nn.ReLU) and is_add(n.args[0]):
        return False
    return True


activations = sum(sizes[n.name] for n in nodes if kept_for_training(n))
training = 4 * (activations + params + statistics + params)

print(f"parameters            {params:,} trainable + {statistics:,} running statistics")
print(f"multiplications       {macs:,} (convolutions and linear alone: {conv_fc:,})")
print(f"one prediction        {inference:,} bytes, textbook (peak of living tensors {4 * peak:,} bytes)")
print(f"training, one image   {training:,} bytes, textbook (activations {4 * activations:,} bytes)")
