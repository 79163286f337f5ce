// Data sets and images: IDX files (MNIST format, gzipped or not), folders of PNG, JPEG, BMP, TIFF
// and WebP images, and conversion of an image to a model's input size and channel count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lenz/normalization.h"
#include "lenz/targets.h"

namespace lenz {

// A decoded image: 8-bit, interleaved (H, W, C) as files store it; C is 1 (grey) or 3 (RGB).
struct Image {
    int64_t height = 0;
    int64_t width = 0;
    int64_t channels = 0;
    std::vector<uint8_t> pixels;  // (H, W, C)
};

// Reads a PNG, JPEG, BMP, TIFF or WebP (chosen by content, not by name) as PIL's convert("RGB") or
// convert("L") gives it: alpha dropped, palettes expanded (grey palettes give grey), 16-bit samples
// scaled to 8 bits (v * 255 / 65535, rounded, as libpng does); a TIFF's first page. Throws
// FormatError/IoError naming the file and what is wrong.
Image read_image(const std::string& path);
// An image's size and channels (1 for grey, with or without alpha; else 3) as read_image would
// give them, from the file's header where the format allows (all five do), without decoding it.
struct ImageInfo {
    int64_t height = 0;
    int64_t width = 0;
    int64_t channels = 0;
};
ImageInfo read_image_info(const std::string& path);
// The file name extensions an image folder reads (lower case, with the dot): .png .jpg .jpeg .bmp
// .tif .tiff .webp.
bool is_image_extension(const std::string& extension);
// Writes an 8-bit PNG (grey, RGB). Throws IoError, or ShapeError for an image of another shape.
void write_png(const std::string& path, const Image& image);
// The bytes of that PNG file, in memory (for data: URIs). Throws ShapeError.
std::string encode_png(const Image& image);
// The bytes of a baseline JPEG of grey or RGB pixels, quality 1..100. Throws ShapeError.
std::string encode_jpeg(const Image& image, int quality);
// PNG or JPEG, chosen by the name's extension (.png, .jpg, .jpeg); any other name is refused
// (IoError) rather than written in a format it does not say.
void write_image(const std::string& path, const Image& image);

// Converts to exactly height x width x channels: grey<->RGB by luminance/replication; the image is
// resized so that its shorter side fits, centre-cropped to the target aspect, then bilinear-resampled.
Image fit_image(const Image& image, int64_t height, int64_t width, int64_t channels);

// An image scaled to fit inside height x width with its aspect kept (the same resampling as
// fit_image), centred, the rest filled with `fill` (one value per channel): Ultralytics' letterbox,
// and how lenz segment runs an image of any size. Where the image lies: rows top..top + height,
// columns left..left + width.
struct Letterboxed {
    Image image;
    int64_t top = 0, left = 0, height = 0, width = 0;
};
Letterboxed letterbox_image(const Image& image, int64_t height, int64_t width, int64_t channels,
                            const std::vector<uint8_t>& fill);

// Reads a segmentation mask: a PNG, 8-bit grey or palette, whose value (a palette's index, as
// stored, never its colour) is each pixel's class; 1, 2 and 4-bit ones are widened. Anything else
// (RGB, 16-bit, a JPEG) is a FormatError naming the file.
Image read_mask(const std::string& path);
// Fits a mask (one channel) to height x width through the same centred window fit_image takes of
// its image, by nearest neighbour: classes are never blended.
Image fit_mask(const Image& mask, int64_t height, int64_t width);

// Images of one size, stored planar (N, C, H, W) as 8-bit, labelled with a class each
// (classification) or a class for every pixel (segmentation: masks, and no labels).
struct ImageSet {
    int64_t height = 0;
    int64_t width = 0;
    int64_t channels = 0;
    std::vector<uint8_t> pixels;  // (N, C, H, W)
    std::vector<int32_t> labels;  // (N), each in [0, class_names.size())
    std::vector<uint8_t> masks;   // (N, H, W), each pixel's class, or kIgnorePixel
    std::vector<std::string> class_names;
    bool segmentation() const { return !masks.empty(); }
    int64_t size() const {
        return segmentation() ? static_cast<int64_t>(masks.size()) / (height * width)
                              : static_cast<int64_t>(labels.size());
    }
    int64_t image_elements() const { return height * width * channels; }
};

// A seeded random subset of at most `limit` images (all of them where limit is 0 or the set is no
// larger) that keeps every class in proportion, at least one image of each class present, as
// scikit-learn's train_test_split(stratify=) does; the images keep the set's order. `stream` keeps
// the training and test subsets of one seed apart. Throws ShapeError where the limit is below the
// number of classes present. A segmentation set's subset is a seeded random one (it has no class per
// image), its masks with it.
constexpr uint64_t kTrainLimitStream = 0x4c494d4954ull << 8, kTestLimitStream = kTrainLimitStream + 1;
std::vector<int64_t> stratified_sample(const std::vector<int32_t>& labels, int64_t limit, uint64_t seed,
                                       uint64_t stream);
ImageSet limit_images(const ImageSet& set, int64_t limit, uint64_t seed, uint64_t stream);
// Images per class, indexed by label (at least as many entries as class_names).
std::vector<int64_t> class_counts(const ImageSet& set);

// Per-channel mean and standard deviation of a set's pixels (the standard deviation at least 1e-3,
// so that a constant channel does not divide by zero).
Normalization compute_normalization(const ImageSet& set);
// min(count, set.size()) images of `set`, drawn at random with `seed`, normalised with `norm`, as
// lenz quantize calibrates on them ((N, C, H, W) floats).
std::vector<float> calibration_images(const ImageSet& set, const Normalization& norm, int64_t count,
                                      uint64_t seed);

// Reads an IDX image file (magic 0x00000803, u8, N x H x W) and its label file (0x00000801, u8, N).
// Either may be gzip-compressed. Checks magic, dimensions against the file length and sane limits,
// and that the counts agree. class_names are left empty.
ImageSet read_idx(const std::string& images_path, const std::string& labels_path);

struct DataSplit {
    ImageSet train;
    ImageSet test;
    std::string description;  // "Fashion-MNIST (/usr/share/datasets/fashion-mnist)"
    // With DataOptions::skip_bad_images: the image files left out, "PATH: what is wrong", in the
    // order found (also on stderr, and counted in the description).
    std::vector<std::string> bad_images;
};

// The default of DataOptions::skip_bad_images, which the command line's --skip-bad-images sets for
// every load in the process (load_dataset_for included). Off unless set.
void set_skip_bad_images_default(bool skip);
bool skip_bad_images_default();

struct DataOptions {
    // For image folders without test/: fraction of each class held out as test (0 = none allowed).
    double val_split = 0.0;
    uint64_t seed = 1;
    // Image folders are converted to this size and channel count (from the model's input). Height
    // and width both 0: the most common size among the training images (ties: the larger); channels
    // 0: the most common channel count (ties: 3). Read from the files' headers, and said in the
    // description ("64x64x3, the most common size (57 of 60 training images)").
    int64_t height = 0, width = 0, channels = 0;
    // Image files that cannot be read are left out and listed (DataSplit::bad_images, stderr: at most
    // 10 lines, then "and K more") instead of stopping the load with the first one's error.
    bool skip_bad_images = skip_bad_images_default();
};

// spec: "fashion-mnist" (the Debian package dataset-fashion-mnist), "mnist", a folder holding the
// four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...), an image
// folder (DIR/train/CLASS/*.png|jpg and DIR/test/CLASS/..., or DIR/CLASS/... with val_split), or a
// segmentation folder: DIR/classes.txt (a class name a line), DIR/images/train/NAME.png|jpg|...
// with DIR/masks/train/NAME.png (read_mask), and test/ beside train/ (or val_split); or Pascal
// VOC's own layout (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/train.txt, val.txt).
// Known IDX sets get their class names (Fashion-MNIST: T-shirt/top, Trouser, ...; MNIST: 0..9).
DataSplit load_dataset(const std::string& spec, const DataOptions& options);

}  // namespace lenz
