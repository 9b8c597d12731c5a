# The SIMT emulator (kernels/emu) and its tests (tests/emu). Included by the
# top-level CMakeLists.txt after the test targets exist:
#   include(kernels/emu/emu.cmake)
# Provides:
#   iris_emu                                  the emulator library (g++, boost.context)
#   iris_emu_add_cuda_sources(target f.cu...) compile .cu kernel sources with g++ against it
#   the test_emu_* links and, where nvcc exists, ctest emu_nvcc_compile_* (label unit)
get_filename_component(IRIS_EMU_ROOT ${CMAKE_CURRENT_LIST_DIR}/../.. ABSOLUTE)

# boost::context::fiber (Debian: libboost-context-dev).
find_package(Boost 1.66 REQUIRED COMPONENTS context)

file(GLOB IRIS_EMU_SOURCES CONFIGURE_DEPENDS ${IRIS_EMU_ROOT}/kernels/emu/*.cpp)
add_library(iris_emu STATIC ${IRIS_EMU_SOURCES})
target_include_directories(iris_emu PUBLIC ${IRIS_EMU_ROOT})
target_compile_options(iris_emu PRIVATE ${IRIS_WARNINGS})
target_link_libraries(iris_emu PUBLIC iris Boost::context)
set_target_properties(iris_emu PROPERTIES POSITION_INDEPENDENT_CODE ON)

# A .cu file may also be a CUDA source of libiris, and a source file has one
# language per directory, so g++ sees it through a generated one-line .cpp.
function(iris_emu_add_cuda_sources target)
  foreach(cu ${ARGN})
    get_filename_component(abs ${cu} ABSOLUTE BASE_DIR ${IRIS_EMU_ROOT})
    file(RELATIVE_PATH rel ${IRIS_EMU_ROOT} ${abs})
    string(REGEX REPLACE "[/.]" "_" stem ${rel})
    set(gen ${CMAKE_BINARY_DIR}/emu_gen/${stem}.cpp)
    file(CONFIGURE OUTPUT ${gen} CONTENT "#include \"${abs}\"\n" @ONLY)
    target_sources(${target} PRIVATE ${gen})
  endforeach()
  target_link_libraries(${target} PUBLIC iris_emu)
endfunction()

if(IRIS_TESTS)
  file(GLOB IRIS_EMU_TEST_KERNELS CONFIGURE_DEPENDS ${IRIS_EMU_ROOT}/tests/emu/kernels/*.cu)
  add_library(iris_emu_test_kernels STATIC)
  iris_emu_add_cuda_sources(iris_emu_test_kernels ${IRIS_EMU_TEST_KERNELS})
  target_compile_options(iris_emu_test_kernels PRIVATE ${IRIS_WARNINGS})

  # Each tests/emu/test_emu_*.cpp is a GoogleTest binary made by the top-level loop.
  file(GLOB IRIS_EMU_TEST_SOURCES CONFIGURE_DEPENDS ${IRIS_EMU_ROOT}/tests/emu/test_emu_*.cpp)
  foreach(src ${IRIS_EMU_TEST_SOURCES})
    get_filename_component(name ${src} NAME_WE)
    if(TARGET ${name})
      target_link_libraries(${name} PRIVATE iris_emu_test_kernels iris_emu)
    endif()
  endforeach()

  # The same kernel sources must compile with nvcc for the GPU (compile only; nothing runs).
  if(CMAKE_CUDA_COMPILER)
    set(IRIS_EMU_NVCC ${CMAKE_CUDA_COMPILER})
  else()
    find_program(IRIS_EMU_NVCC nvcc HINTS /usr/local/cuda/bin)
  endif()
  if(IRIS_EMU_NVCC)
    file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/emu_nvcc)
    foreach(cu ${IRIS_EMU_TEST_KERNELS})
      get_filename_component(stem ${cu} NAME_WE)
      add_test(NAME emu_nvcc_compile_${stem}
               COMMAND ${IRIS_EMU_NVCC} -std=c++20 -arch=sm_90 -Werror all-warnings
                       -ccbin ${CMAKE_CXX_COMPILER} -I${IRIS_EMU_ROOT} -c ${cu}
                       -o ${CMAKE_BINARY_DIR}/emu_nvcc/${stem}.o)
      set_tests_properties(emu_nvcc_compile_${stem} PROPERTIES LABELS unit TIMEOUT 300)
    endforeach()
  endif()
endif()
