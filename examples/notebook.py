# %% [markdown]
# # Lenz in a notebook: costs, training and feature maps on Fashion-MNIST
#
# A plain Python file with cells (`# %%`): run it as a script, or open it in Jupyter (jupytext) or
# VS Code as a notebook. It needs the module (README, "Python") and Debian's dataset-fashion-mnist.

# %%
from pathlib import Path

import numpy as np

import lenz

# The repository's models/ folder: beside this file's folder (a notebook runs in examples/).
ROOT = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent
# lenz.datasets.fashion_mnist() gives the arrays alone, as Keras does; load() also the class names.
data = lenz.datasets.load("fashion-mnist")
x_train, y_train, x_test, y_test = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
names = data["class_names"]
print("training images", x_train.shape, x_train.dtype, "test images", x_test.shape, "classes", names)

# %% [markdown]
# ## What the model costs, before training it
# In a notebook, `model.summary(...)` on the last line of a cell shows the table, with each figure's
# derivation behind a toggle; it is also a dict with the keys of `lenz summary --json`.

# %%
model = lenz.Model(ROOT / "models/fashion.lenz")
model.class_names = names  # arrays carry no class names; predictions and pictures use these
summary = model.summary(batch=64)
print(summary)
print(f"{summary['params']:,} parameters, {summary['mults']:,} multiplications per image, "
      f"training plan {summary['training_bytes_plan'] / 1e6:.1f} MB at batch 64")

# %% [markdown]
# ## Training: one epoch on a fifth of the training set
# Ctrl-C (or the notebook's stop button) stops it after the current step, keeping that step's weights.

# %%
history = model.fit(x_train[:12000], y_train[:12000], epochs=1, batch=64,
                    validation=(x_test[:2000], y_test[:2000]), verbose=True)
print({key: round(value, 4) for key, value in history[-1].items() if isinstance(value, float)})

# %%
result = model.evaluate(x_test, y_test)
print(f"test accuracy {result['accuracy']:.2%} on {result['images']:,} images")
worst = min(result["per_class"], key=lambda c: c["accuracy"])
print(f"hardest class: {worst['class']} ({worst['accuracy']:.1%})")

# %%
probabilities = model.predict(x_test[:8])
for p, label in zip(probabilities, y_test[:8]):
    print(f"{names[int(p.argmax())]:12} {p.max():6.1%}   (truly {names[label]})")

# %% [markdown]
# ## Inside the model: feature maps of one image
# `lenz.visualize` draws what `lenz visualize` writes: the image as the model sees it, the first
# layer's filters, one grid of feature maps per conv and pooling layer, and the class probabilities.

# %%
pictures = lenz.visualize(model, x_test[0], out="runs/notebook")
for name, picture in pictures.items():
    print(f"{name:24} {picture.shape[1]:4} x {picture.shape[0]:4} pixels")
maps = [name for name in pictures if name[:2].isdigit()]
print("feature-map grids:", ", ".join(maps), "- also as PNG files in runs/notebook/")

# %%
try:  # in a notebook, with matplotlib installed
    import matplotlib.pyplot as plt

    plt.figure(figsize=(8, 8))
    plt.imshow(pictures[maps[0]])
    plt.axis("off")
    plt.show()
except ImportError:
    pass
