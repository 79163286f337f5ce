// Segmentation folders, for load_dataset (lenz/data.h says the layouts).
#pragma once
#include <filesystem>

#include "lenz/data.h"

namespace lenz {

// DIR holds classes.txt and masks/, or Pascal VOC's layout (in DIR, DIR/VOC2012 or
// DIR/VOCdevkit/VOC2012).
bool is_segmentation_folder(const std::filesystem::path& dir);
// The images with their masks (ImageSet::masks), fitted to the options' size (by default the most
// common size of the training images); FormatError naming the file for a missing mask, a mask of
// another size than its image, or a value that is neither a class nor kIgnorePixel.
DataSplit load_segmentation_folder(const std::filesystem::path& dir, const DataOptions& options);

}  // namespace lenz
