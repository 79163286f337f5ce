# The layers of the house (docs/ARCHITECTURE.md, "Libraries"): each folder of src/ is a library,
# lenz_<folder>, that uses only the libraries below it. The build enforces it: a library's sources
# see only its own folder, the public headers of the libraries it depends on, and the internal
# headers those libraries share with it by name. Neither include/ nor src/ is on any library's
# include path; each library's include roots are staged in BUILD/layering/<library>/ as symbolic
# links, so an include against the arrows fails in the preprocessor, naming the header:
#   fatal error: lenz/train.h: No such file or directory
#
#   lenz_library(NAME [DEPENDS LIB...] [HEADERS H...] [SHARES PATH TO LIB...]...)
#
# DEPENDS: the libraries it uses directly (each declared before; uses are transitive).
# HEADERS: the public headers of include/lenz/ it owns; every one has exactly one owner.
# SHARES PATH TO LIB...: an internal header (or folder) of src/ that the named libraries above it
# may include too, by its path from src/ ("layers/pass.h").

set(LENZ_LAYERING_DIR ${CMAKE_BINARY_DIR}/layering)
set(LENZ_LIBRARIES)  # declared order, lowest first; reversed into link order at the end
set(LENZ_LAYERING_TABLE)  # "name:dep,dep" for scripts/check-layering.py

function(lenz_library name)
  set(depends)
  set(headers)
  set(mode "")
  set(share_path "")
  foreach(arg ${ARGN})
    if(arg STREQUAL "DEPENDS" OR arg STREQUAL "HEADERS" OR arg STREQUAL "SHARES" OR arg STREQUAL "TO")
      set(mode ${arg})
    elseif(mode STREQUAL "DEPENDS")
      list(APPEND depends ${arg})
    elseif(mode STREQUAL "HEADERS")
      list(APPEND headers ${arg})
    elseif(mode STREQUAL "SHARES")
      if(NOT EXISTS ${PROJECT_SOURCE_DIR}/src/${arg})
        message(FATAL_ERROR "lenz_library(${name}): SHARES ${arg}: no such file or folder in src/")
      endif()
      set(share_path ${arg})
    elseif(mode STREQUAL "TO")
      if(TARGET lenz_${arg})
        message(FATAL_ERROR "lenz_library(${name}): shares ${share_path} to ${arg}, which is declared "
          "before it: a library shares only with those above it")
      endif()
      set_property(GLOBAL APPEND PROPERTY LENZ_SHARED_TO_${arg} "${share_path}")
      set_property(GLOBAL APPEND PROPERTY LENZ_SHARE_TARGETS ${arg})
    else()
      message(FATAL_ERROR "lenz_library(${name}): unexpected '${arg}'")
    endif()
  endforeach()

  set(root ${LENZ_LAYERING_DIR}/${name})
  file(REMOVE_RECURSE ${root})  # nothing staged by an earlier configure survives a change of table
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  add_library(lenz_${name} ${sources})

  foreach(header ${headers})
    if(NOT EXISTS ${PROJECT_SOURCE_DIR}/include/lenz/${header})
      message(FATAL_ERROR "lenz_library(${name}): HEADERS ${header}: no include/lenz/${header}")
    endif()
    get_property(owner GLOBAL PROPERTY LENZ_HEADER_OWNER_${header})
    if(owner)
      message(FATAL_ERROR "lenz/${header} is owned by both ${owner} and ${name}")
    endif()
    set_property(GLOBAL PROPERTY LENZ_HEADER_OWNER_${header} ${name})
    file(MAKE_DIRECTORY ${root}/public/lenz)
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/include/lenz/${header} ${root}/public/lenz/${header} SYMBOLIC)
  endforeach()
  if(headers)
    target_include_directories(lenz_${name} PUBLIC $<BUILD_INTERFACE:${root}/public>)
  endif()
  file(MAKE_DIRECTORY ${root}/own)
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${name} ${root}/own/${name} SYMBOLIC)
  target_include_directories(lenz_${name} PRIVATE ${root}/own)

  get_property(shared GLOBAL PROPERTY LENZ_SHARED_TO_${name})
  foreach(path ${shared})
    get_filename_component(parent ${root}/shared/${path} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${path} ${root}/shared/${path} SYMBOLIC)
  endforeach()
  if(shared)
    target_include_directories(lenz_${name} PRIVATE ${root}/shared)
  endif()
  set_property(GLOBAL PROPERTY LENZ_SHARED_TO_${name} "")

  foreach(dep ${depends})
    if(NOT TARGET lenz_${dep})
      message(FATAL_ERROR "lenz_library(${name}): DEPENDS ${dep}, which is not declared before it")
    endif()
  endforeach()
  list(TRANSFORM depends PREPEND lenz_ OUTPUT_VARIABLE dep_targets)
  target_link_libraries(lenz_${name} PUBLIC ${dep_targets})
  # Position-independent always, not only where the Python module (a shared object) links it in:
  # the libraries are then the same with or without the module, so switching it on (test.sh does,
  # after run.sh built without it) rebuilds nothing but the module. Nothing outside the libraries
  # replaces their functions, so the compiler may still inline them as in an executable.
  set_target_properties(lenz_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_compile_options(lenz_${name} PRIVATE -fno-semantic-interposition)

  list(APPEND LENZ_LIBRARIES lenz_${name})
  set(LENZ_LIBRARIES ${LENZ_LIBRARIES} PARENT_SCOPE)
  string(JOIN "," dep_list ${depends})
  list(APPEND LENZ_LAYERING_TABLE "${name}:${dep_list}")
  set(LENZ_LAYERING_TABLE ${LENZ_LAYERING_TABLE} PARENT_SCOPE)
endfunction()

# A program above every library (the lenz command, the Python module) sees its own folder of src/
# (FOLDER, may be empty) besides the public headers of what it links.
function(lenz_program_sources target folder)
  if(folder)
    set(root ${LENZ_LAYERING_DIR}/program-${folder})
    file(REMOVE_RECURSE ${root})
    file(MAKE_DIRECTORY ${root})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${folder} ${root}/${folder} SYMBOLIC)
    target_include_directories(${target} PRIVATE ${root})
  endif()
endfunction()

# The table. Drawn in docs/ARCHITECTURE.md ("Libraries"); scripts/check-layering.py checks the
# symbols against it.
lenz_library(core
  HEADERS error.h shape.h buffer.h random.h threads.h precision.h activation.h targets.h
  SHARES core/files.h TO data formats
  SHARES core/layout.h TO kernels layers engine
  SHARES core/conv_geometry.h TO kernels layers engine formats)
lenz_library(kernels DEPENDS core
  SHARES kernels TO layers engine)
lenz_library(layers DEPENDS kernels core
  HEADERS layer.h layer_config.h layers.h normalization.h
  SHARES layers/pass.h TO engine
  SHARES layers/window.h TO engine formats)
lenz_library(model DEPENDS layers
  HEADERS model.h)
lenz_library(engine DEPENDS model
  HEADERS engine.h loss.h quantize.h
  SHARES engine/value_graph.h TO analysis)  # until the summary reads the plan (DESIGN-next.md, H4)
lenz_library(distributed DEPENDS model
  HEADERS ranks.h
  SHARES distributed/gradient_sync.h TO train)
lenz_library(formats DEPENDS engine
  HEADERS checkpoint.h onnx.h npy.h model_text.h)
lenz_library(data DEPENDS layers
  HEADERS data.h)
lenz_library(analysis DEPENDS engine
  HEADERS summary.h communication.h)
lenz_library(train DEPENDS formats data distributed
  HEADERS train.h train_options.h optimizer.h metrics.h evaluate.h finetune.h)
lenz_library(report DEPENDS train analysis
  HEADERS report.h)

file(GLOB lenz_public_headers RELATIVE ${PROJECT_SOURCE_DIR}/include/lenz CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/include/lenz/*.h)
foreach(header ${lenz_public_headers})
  get_property(owner GLOBAL PROPERTY LENZ_HEADER_OWNER_${header})
  if(NOT owner)
    message(FATAL_ERROR "include/lenz/${header} has no owner: add it to a library's HEADERS in "
      "cmake/LenzLibraries.cmake")
  endif()
endforeach()
get_property(share_targets GLOBAL PROPERTY LENZ_SHARE_TARGETS)
foreach(name ${share_targets})
  if(NOT TARGET lenz_${name})
    message(FATAL_ERROR "cmake/LenzLibraries.cmake shares a header to '${name}', which is no library")
  endif()
endforeach()
list(REVERSE LENZ_LIBRARIES)  # link order: a library before those it uses
