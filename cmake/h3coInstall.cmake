# install() rules and the CMake package (find_package(h3co)). Included from the
# top-level CMakeLists.txt when H3CO_INSTALL is ON. Modelled on asio-grpc's
# cmake/AsioGrpcInstallation.cmake.
#
# Installs:
#   <includedir>/h3co/**.{hpp,ipp}                the library
#   <includedir>/h3co-ngtcp2-crypto/ngtcp2/*.h    the crypto helper's public headers
#                                                 (from the ngtcp2 source it was built
#                                                 from: H3CO_NGTCP2_SOURCE_DIR, either stack)
#   <libdir>/libh3co_ngtcp2_crypto_boringssl.a    the crypto helper
#   <libdir>/cmake/h3co/h3co{Config,ConfigVersion,Targets,FindDependencies}.cmake
include_guard(GLOBAL)

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(H3CO_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/h3co"
    CACHE STRING "Where h3coConfig.cmake is installed (relative to the prefix)")
mark_as_advanced(H3CO_INSTALL_CMAKEDIR)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/h3co"
        TYPE INCLUDE
        COMPONENT h3co_development
        FILES_MATCHING PATTERN "*.hpp" PATTERN "*.ipp")

install(FILES "${H3CO_NGTCP2_SOURCE_DIR}/crypto/includes/ngtcp2/ngtcp2_crypto.h"
              "${H3CO_NGTCP2_SOURCE_DIR}/crypto/includes/ngtcp2/ngtcp2_crypto_boringssl.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/h3co-ngtcp2-crypto/ngtcp2"
        COMPONENT h3co_development)

install(TARGETS h3co h3co_compiled h3co_ngtcp2_crypto_boringssl
        EXPORT h3coTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT h3co_development)

install(EXPORT h3coTargets
        NAMESPACE h3co::
        DESTINATION "${H3CO_INSTALL_CMAKEDIR}"
        COMPONENT h3co_development)

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/h3coConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/generated/h3coConfig.cmake"
  INSTALL_DESTINATION "${H3CO_INSTALL_CMAKEDIR}")

# Not ARCH_INDEPENDENT (asio-grpc, being header-only, is): h3co installs a static
# library compiled for this architecture, so the version file must also reject a
# consumer whose pointer size differs (which ARCH_INDEPENDENT would skip).
# SameMajorVersion: h3co keeps its API within a major version.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/generated/h3coConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMajorVersion)

install(FILES "${PROJECT_BINARY_DIR}/generated/h3coConfig.cmake"
              "${PROJECT_BINARY_DIR}/generated/h3coConfigVersion.cmake"
              "${CMAKE_CURRENT_LIST_DIR}/h3coFindDependencies.cmake"
        DESTINATION "${H3CO_INSTALL_CMAKEDIR}"
        COMPONENT h3co_development)
