# ctest public_headers_hide_dependencies: the installed headers (include/lenz/*.h) name no type of
# oneDNN, protobuf/ONNX or MPI and include none of their headers, nor those of the image libraries,
# so that a program needs only Lenz's include directory and none of those libraries' headers.
#   cmake -DHEADERS=DIR -P CheckPublicHeaders.cmake
file(GLOB headers "${HEADERS}/*.h")
if(NOT headers)
  message(FATAL_ERROR "no headers in ${HEADERS}")
endif()
set(forbidden
  "dnnl::" "dnnl_[a-z_]+_t" "google::protobuf" "onnx::" "MPI_Comm"
  "#[ \t]*include[ \t]*[<\"](dnnl|oneapi/|google/protobuf|onnx/|mpi\\.h|omp\\.h|png\\.h|jpeglib\\.h|tiffio?\\.h|webp/|zlib\\.h|nlohmann/)"
  "#[ \t]*include[ \t]*\"[^l][^\"]*\"" "#[ \t]*include[ \t]*\"lenz/[^\"]*/")  # only "lenz/x.h" of its own
set(failed "")
foreach(header ${headers})
  # One list item per line: the characters that CMake lists treat specially become spaces first.
  file(READ "${header}" text)
  string(REGEX REPLACE "[][;\\]" " " text "${text}")
  string(REPLACE "\n" ";" lines "${text}")
  set(number 0)
  foreach(line IN LISTS lines)
    math(EXPR number "${number} + 1")
    string(REGEX REPLACE "//.*$" "" code "${line}")  # comments may speak of oneDNN and MPI
    foreach(pattern ${forbidden})
      if(code MATCHES "${pattern}")
        string(APPEND failed "${header}:${number}: ${line}\n")
      endif()
    endforeach()
  endforeach()
endforeach()
if(failed)
  message(FATAL_ERROR "public headers expose a dependency:\n${failed}")
endif()
list(LENGTH headers count)
message(STATUS "${count} public headers, none exposing oneDNN, protobuf, ONNX, MPI or an image library")
