// Files: whether a path is a folder or a file; whole files in and out: read with a size limit checked before
// reading, written so that they are either wholly the old version or wholly the new one, whatever happens
// mid-write.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace lenz {

// Whether `path` is a folder, or a regular file: false where it is not, or cannot be looked at (a
// permission, a dangling link), rather than std::filesystem's exception.
bool is_folder(const std::filesystem::path& path);
bool is_regular(const std::filesystem::path& path);

// Throws IoError "PATH: is a directory, not a file (expected WHAT)" for a directory, where opening succeeds
// and reading fails later with a misleading message ("empty", "too large"). `what` names the file expected
// ("a model file").
void check_not_directory(const std::string& path, const std::string& what);

// The whole file, refused (FormatError "larger than <limit>") before reading if it is over
// max_bytes; `what` names it in errors ("the checkpoint").
std::string read_whole_file(const std::string& path, int64_t max_bytes, const std::string& what,
                            const std::string& limit);
// The file's size, with the same checks, for a reader that streams it.
int64_t file_size_at_most(const std::string& path, int64_t max_bytes, const std::string& what,
                          const std::string& limit);

// Writes size bytes to fd, retrying short writes; throws IoError naming `path`.
void write_all(int fd, const char* data, size_t size, const std::string& path);

// Calls fill(fd, tmp) to write a temporary file in path's folder, flushes it to disk, renames it
// over `path` and makes the rename durable. On any failure the temporary file is removed and
// `path` is left as it was. `what` names the file in errors ("the checkpoint").
void write_atomically(const std::string& path, const std::string& what,
                      const std::function<void(int fd, const std::string& tmp)>& fill);

}  // namespace lenz
