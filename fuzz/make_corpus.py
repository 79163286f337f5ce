#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/: small valid files and broken ones.

Run from the repository root: python3 fuzz/make_corpus.py [path/to/lenz]. With the lenz binary it
also makes checkpoint seeds by training tiny models for one epoch on a synthetic IDX set. The JPEG
seeds (image/*.jpg) come from fuzz/make_jpeg_seeds.c; the BMP seeds are written here byte by byte,
the TIFF and WebP ones with PIL (python3-pil), skipped with a note where it is missing.
Everything here is deterministic, so re-running gives the same files.
"""
import gzip
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def model_text():
    models = os.path.join(os.path.dirname(ROOT), "..", "models")
    for name in sorted(os.listdir(models)):
        if name.endswith(".lenz"):
            with open(os.path.join(models, name), "rb") as f:
                put("model_text", name, f.read())
    put("model_text", "every_layer.lenz",
        "# every layer kind\ninput 32x32x3\nconv 8 3x3 stride=2 padding=same relu\nbatchnorm\nleakyrelu 0.1\n"
        "maxpool 2\nconv 8 1x1 bias=false tanh\navgpool 3x3 stride=1 padding=1\nconv 4 3x5 padding=1x2 sigmoid\n"
        "globalavgpool\nflatten\ndropout 0.5\ndense 10\nsoftmax\n")
    put("model_text", "global_max.lenz", "input 8x8x1\nconv 2 3x3\nglobalmaxpool\ndense 3 softmax\n")
    put("model_text", "bad_keyword.lenz", "input 28x28x1\nconvolution 8 3x3\n")
    put("model_text", "huge.lenz", "input 32768x32768x4096\nconv 100000 99x99\ndense 999999999999\n")
    put("model_text", "no_input.lenz", "conv 8 3x3\ndense 10\n")
    put("model_text", "too_small.lenz", "input 2x2x1\nconv 4 5x5\n")
    put("model_text", "junk_args.lenz", "input 28x28x1\nconv 8 3x3 stride=0 padding=x1 relu relu\ndropout 1.5\n")
    put("model_text", "binary.lenz", bytes(range(256)))
    put("model_text", "empty.lenz", "")


def idx_pair(images, labels):
    """The fuzz_idx input: 4-byte little-endian image-file length, image file, label file."""
    return struct.pack("<I", len(images)) + images + labels


def idx_images(count, h, w, seed, claimed=None):
    rnd = random.Random(seed)
    header = struct.pack(">IIII", 0x803, count if claimed is None else claimed, h, w)
    return header + bytes(rnd.randrange(256) for _ in range(count * h * w))


def idx_labels(count, seed, claimed=None):
    rnd = random.Random(seed)
    return struct.pack(">II", 0x801, count if claimed is None else claimed) + bytes(rnd.randrange(10) for _ in range(count))


def idx():
    put("idx", "plain", idx_pair(idx_images(3, 4, 5, 1), idx_labels(3, 2)))
    put("idx", "gzip", idx_pair(gzip.compress(idx_images(4, 6, 6, 3), mtime=0), gzip.compress(idx_labels(4, 4), mtime=0)))
    two = gzip.compress(idx_images(2, 3, 3, 5)[:12], mtime=0) + gzip.compress(idx_images(2, 3, 3, 5)[12:], mtime=0)
    put("idx", "gzip_two_members", idx_pair(two, idx_labels(2, 6)))
    put("idx", "count_lies", idx_pair(idx_images(3, 4, 4, 7, claimed=0xFFFFFFFF), idx_labels(3, 8)))
    put("idx", "huge_dims", idx_pair(struct.pack(">IIII", 0x803, 1, 0x7FFFFFFF, 0x7FFFFFFF), idx_labels(1, 9)))
    put("idx", "swapped", idx_pair(idx_labels(3, 2), idx_images(3, 4, 5, 1)))
    put("idx", "label_count_differs", idx_pair(idx_images(3, 2, 2, 1), idx_labels(4, 2)))
    put("idx", "truncated_gzip", idx_pair(gzip.compress(idx_images(4, 6, 6, 3), mtime=0)[:-9], idx_labels(4, 4)))
    put("idx", "short", idx_pair(b"\x00\x00\x08", b""))


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(w, h, colour_type, depth, rows, extra=b"", interlace=0):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, interlace)
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(raw, 9)) +
            png_chunk(b"IEND", b""))


def image():
    rnd = random.Random(11)
    grey = png(7, 5, 0, 8, [bytes(rnd.randrange(256) for _ in range(7)) for _ in range(5)])
    put("image", "grey.png", grey)
    put("image", "rgb.png", png(4, 6, 2, 8, [bytes(rnd.randrange(256) for _ in range(12)) for _ in range(6)]))
    put("image", "rgba.png", png(3, 3, 6, 8, [bytes(rnd.randrange(256) for _ in range(12)) for _ in range(3)]))
    put("image", "grey_alpha.png", png(2, 2, 4, 8, [bytes(rnd.randrange(256) for _ in range(4)) for _ in range(2)]))
    palette = png_chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]))
    put("image", "palette.png", png(5, 2, 3, 2, [bytes([0b00011011, 0b01000000]) for _ in range(2)], palette))
    put("image", "16bit.png", png(2, 3, 0, 16, [bytes(rnd.randrange(256) for _ in range(4)) for _ in range(3)]))
    put("image", "1bit.png", png(9, 2, 0, 1, [bytes([0b10101010, 0b10000000]) for _ in range(2)]))
    put("image", "interlaced.png", png(9, 9, 2, 8, [bytes(rnd.randrange(256) for _ in range(27)) for _ in range(9)],
                                       interlace=1))
    put("image", "wide.png", png(300, 1, 0, 8, [bytes(300)]))
    put("image", "truncated.png", grey[: len(grey) // 2])
    put("image", "huge_header.png", png(32768, 32768, 2, 8, [b""]))  # IHDR says 3 GB, IDAT holds nothing
    put("image", "bad_crc.png", grey[:20] + b"\x00" + grey[21:])
    put("image", "garbage.bin", b"GIF89a not an image we read")
    bmp_seeds()
    pil_seeds()


def bmp(w, h, bpp, compression, pixels, palette=b"", masks=b"", header_size=40):
    """A BMP: file header, INFO header (or the 12-byte core one), masks, palette, pixels."""
    if header_size == 12:
        header = struct.pack("<IHHHH", 12, w, h, 1, bpp)
    else:
        header = struct.pack("<IiiHHIIiiII", header_size, w, h, 1, bpp, compression, len(pixels), 2835, 2835,
                             len(palette) // 4, 0)
        header += masks if header_size > 40 else b""
        header = header.ljust(header_size, b"\0")
        masks = b"" if header_size > 40 else masks
    offset = 14 + len(header) + len(masks) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + masks + palette + pixels


def bmp_seeds():
    rnd = random.Random(13)
    noise = lambda n: bytes(rnd.randrange(256) for _ in range(n))
    rgb = bmp(5, 3, 24, 0, noise(16 * 3))  # rows of 15 bytes padded to 16
    put("image", "rgb24.bmp", rgb)
    put("image", "top_down.bmp", bmp(3, -2, 24, 0, noise(12 * 2)))
    greys = b"".join(bytes([i, i, i, 0]) for i in range(0, 256, 17))
    put("image", "grey8.bmp", bmp(6, 2, 8, 0, bytes(rnd.randrange(16) for _ in range(16)), greys))
    colours = b"".join(bytes([rnd.randrange(256) for _ in range(3)] + [0]) for _ in range(16))
    put("image", "palette4.bmp", bmp(7, 2, 4, 0, noise(8), colours))
    put("image", "mono1.bmp", bmp(9, 2, 1, 0, noise(8), colours[:8]))
    put("image", "rgb555.bmp", bmp(3, 2, 16, 0, noise(16)))
    put("image", "rgb565.bmp", bmp(2, 2, 16, 3, noise(8), masks=struct.pack("<III", 0xF800, 0x07E0, 0x001F)))
    put("image", "bgra32_v5.bmp", bmp(2, 2, 32, 3, noise(16), masks=struct.pack("<IIII", 0xFF0000, 0xFF00, 0xFF,
                                                                                 0xFF000000), header_size=124))
    put("image", "core.bmp", bmp(2, 2, 24, 0, noise(16), header_size=12))
    rle8 = bytes([3, 1, 0, 3, 2, 3, 2, 0, 0, 0, 0, 2, 1, 0, 2, 4, 0, 1])
    put("image", "rle8.bmp", bmp(6, 3, 8, 1, rle8, colours))
    rle4 = bytes([4, 0x12, 0, 0, 0, 3, 0x34, 0x50, 0, 1])
    put("image", "rle4.bmp", bmp(5, 2, 4, 2, rle4, colours))
    put("image", "truncated.bmp", rgb[: len(rgb) - 20])
    put("image", "huge_header.bmp", bmp(30000, 30000, 24, 0, b""))


def pil_seeds():
    try:
        from PIL import Image
    except ImportError:
        print("PIL missing (apt-get install python3-pil): no TIFF or WebP seeds written", file=sys.stderr)
        return
    rnd = random.Random(17)
    noise = lambda n: bytes(rnd.randrange(256) for _ in range(n))
    def save(name, image, **options):
        import io
        out = io.BytesIO()
        image.save(out, **options)
        put("image", name, out.getvalue())
        return out.getvalue()
    rgb = Image.frombytes("RGB", (6, 4), noise(72))
    save("rgb.tif", rgb, format="TIFF")
    lzw = save("rgb_lzw.tif", rgb, format="TIFF", compression="tiff_lzw")
    save("rgb_deflate.tif", rgb, format="TIFF", compression="tiff_adobe_deflate")
    save("grey_packbits.tif", Image.frombytes("L", (7, 3), noise(21)), format="TIFF", compression="packbits")
    save("rgba.tif", Image.frombytes("RGBA", (3, 3), noise(36)), format="TIFF")
    save("palette.tif", rgb.quantize(6), format="TIFF")
    save("grey16.tif", Image.frombytes("I;16", (4, 2), noise(16)), format="TIFF")
    save("bilevel.tif", Image.frombytes("1", (9, 2), noise(4)), format="TIFF", compression="group4")
    put("image", "truncated.tif", lzw[: len(lzw) // 2])
    lossless = save("lossless.webp", rgb, format="WEBP", lossless=True)
    save("lossy.webp", rgb, format="WEBP", quality=50)
    save("alpha.webp", Image.frombytes("RGBA", (5, 3), noise(60)), format="WEBP", lossless=True)
    save("lossy_alpha.webp", Image.frombytes("RGBA", (5, 3), noise(60)), format="WEBP", quality=40)
    put("image", "truncated.webp", lossless[: len(lossless) - 10])


def checkpoints(lenz):
    """Trains two tiny models for one epoch on a synthetic IDX set and keeps their checkpoints."""
    work = tempfile.mkdtemp(prefix="lenz-corpus-")
    try:
        data = os.path.join(work, "data")
        os.makedirs(data)
        for prefix, n in (("train", 64), ("t10k", 16)):
            with open(os.path.join(data, prefix + "-images-idx3-ubyte"), "wb") as f:
                f.write(idx_images(n, 6, 6, n))
            with open(os.path.join(data, prefix + "-labels-idx1-ubyte"), "wb") as f:
                f.write(struct.pack(">II", 0x801, n) + bytes(i % 3 for i in range(n)))
        models = {
            "dense": "input 6x6x1\nflatten\ndense 3 softmax\n",
            "conv_bn": "input 6x6x1\nconv 2 3x3 relu\nbatchnorm\nmaxpool 2\nflatten\ndense 3 softmax\n",
        }
        for name, text in models.items():
            path = os.path.join(work, name + ".lenz")
            with open(path, "w") as f:
                f.write(text)
            out = os.path.join(work, "run-" + name)
            subprocess.run([lenz, "train", path, "--data", data, "--epochs", "1", "--batch", "16", "--quiet",
                            "--out", out, "--optimizer", "sgd" if name == "dense" else "adam"], check=True)
            with open(os.path.join(out, "model.safetensors"), "rb") as f:
                good = f.read()
            with open(os.path.join(out, "best.safetensors"), "rb") as f:
                put("checkpoint", name + "_weights_only.safetensors", f.read())
            put("checkpoint", name + ".safetensors", good)
            if name == "dense":
                (length,) = struct.unpack("<Q", good[:8])
                header, rest = good[8:8 + length], good[8 + length:]
                put("checkpoint", "truncated.safetensors", good[: len(good) // 2])
                put("checkpoint", "header_length_lies.safetensors", struct.pack("<Q", 1 << 40) + good[8:])
                put("checkpoint", "bad_json.safetensors", good[:8] + b"#" + good[9:])
                lying = header.replace(b"dense 3 softmax", b"dense 16000000 softmax")
                put("checkpoint", "model_lies.safetensors", struct.pack("<Q", len(lying)) + lying + rest)
                overlap = header.replace(b'"data_offsets":[0,', b'"data_offsets":[4,', 1)
                put("checkpoint", "offsets_lie.safetensors", struct.pack("<Q", len(overlap)) + overlap + rest)
        put("checkpoint", "tiny.safetensors", struct.pack("<Q", 2) + b"{}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    model_text()
    idx()
    image()
    if len(sys.argv) > 1:
        checkpoints(sys.argv[1])
