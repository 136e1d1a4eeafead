# Cross build of the firmware (bootloader for the STM32H755, example apps,
# QEMU image) as part of the normal host build. Included by
# firmware/CMakeLists.txt. The ARM targets live in their own CMake project
# (firmware/port/stm32h755/CMakeLists.txt) configured with the arm-none-eabi
# toolchain file and built by ExternalProject, so host flags (sanitizers,
# host warnings) never leak into the firmware and vice versa.
find_program(FLASHER_ARM_GCC arm-none-eabi-gcc)
set(FLASHER_FIRMWARE_BUILT OFF CACHE INTERNAL "firmware cross build enabled")
set(FLASHER_FIRMWARE_BIN_DIR ${CMAKE_BINARY_DIR}/firmware-arm CACHE INTERNAL "firmware cross build folder")

if(FLASHER_BUILD_FIRMWARE AND FLASHER_ARM_GCC)
  include(ExternalProject)
  ExternalProject_Add(flasher_firmware
    SOURCE_DIR ${CMAKE_CURRENT_SOURCE_DIR}/port/stm32h755
    BINARY_DIR ${FLASHER_FIRMWARE_BIN_DIR}
    CMAKE_ARGS
      -DCMAKE_TOOLCHAIN_FILE=${CMAKE_CURRENT_SOURCE_DIR}/port/stm32h755/arm-none-eabi.cmake
      -DCMAKE_BUILD_TYPE=MinSizeRel
      -DFLASHER_ROOT=${PROJECT_SOURCE_DIR}
    BUILD_ALWAYS ON
    INSTALL_COMMAND ""
    # Whole tree is a dependency: rebuild when any firmware source changes.
    BUILD_BYPRODUCTS
      ${FLASHER_FIRMWARE_BIN_DIR}/flasher-boot-stm32h755.elf
      ${FLASHER_FIRMWARE_BIN_DIR}/qemu-mps2/flasher-qemu-m7.elf)
  set(FLASHER_FIRMWARE_BUILT ON CACHE INTERNAL "firmware cross build enabled")
  message(STATUS "flasher: cross-building the firmware with ${FLASHER_ARM_GCC}")
elseif(FLASHER_BUILD_FIRMWARE)
  message(STATUS "flasher: arm-none-eabi-gcc not found, firmware not built")
endif()
