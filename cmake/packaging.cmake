# Debian packages, one per install component (cpack -G DEB in the build directory; a
# packaging build configures with -DCMAKE_INSTALL_PREFIX=/usr -DSPC_INSTALL_RPATH=OFF,
# as tests/packaging/deb.sh does):
#   libspeadcast<soversion>  lib       the shared library (the only versioned name)
#   libspeadcast-dev         dev       headers, .so link, pkg-config, CMake package with
#                                      speadcast_add_plugin()
#   speadcast-tools          tools     speadcast-send/-recv/-bench/-info/-demo, man pages
#   speadcast-plugins        plugins   transports that need only libc (udp, tcp, ...)
#   speadcast-plugin-<name>  plugin_<name>  a transport with a system library of its own
#                                      (SPC_PLUGINS_OWN_PACKAGE in plugins/CMakeLists.txt)
# The first line of each component description is the package summary.
# Depends come from the binaries (dpkg-shlibdeps) plus the component graph below, each
# inter-package dependency pinned to this exact version.
set(SPC_DEB_MAINTAINER "speadcast developers <speadcast-dev@invalid>" CACHE STRING
  "Maintainer field of the Debian packages")
set(SPC_LIB_PACKAGE libspeadcast${PROJECT_VERSION_MAJOR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME speadcast)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${SPC_DEB_MAINTAINER}")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://casper.berkeley.edu/wiki/SPEAD")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${SPC_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# dpkg-shlibdeps finds libspeadcast.so.<soversion> (needed by the tools) in the build tree.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR}/core)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)

get_property(SPC_PLUGIN_COMPONENTS GLOBAL PROPERTY SPC_PLUGIN_COMPONENTS)
list(REMOVE_DUPLICATES SPC_PLUGIN_COMPONENTS)
set(CPACK_COMPONENTS_ALL lib dev tools ${SPC_PLUGIN_COMPONENTS})

set(CPACK_DEBIAN_LIB_PACKAGE_NAME ${SPC_LIB_PACKAGE})
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
# A shlibs file, so packages built against the library depend on ${SPC_LIB_PACKAGE}; it
# also registers the ldconfig trigger.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_COMPONENT_LIB_DESCRIPTION "SPEAD sender library, shared library
speadcast packetizes heaps in the SPEAD format of radio telescopes (byte for byte as
spead2 4.4.1) and sends them at a set rate through transport plugins loaded by name
from a JSON stream config. The transports are in speadcast-plugins and
speadcast-plugin-*.")
if(SPC_PLUGIN_COMPONENTS MATCHES "(^|;)plugins(;|$)")
  set(CPACK_DEBIAN_LIB_PACKAGE_RECOMMENDS speadcast-plugins)
endif()

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libspeadcast-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DEPENDS lib)
set(CPACK_COMPONENT_DEV_DESCRIPTION "SPEAD sender library, development files
Headers (speadcast/*.h), the libspeadcast.so link, the pkg-config file speadcast.pc and
the CMake package speadcast (find_package(speadcast), target speadcast::speadcast,
speadcast_add_plugin() for writing transport plugins).")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME speadcast-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
set(CPACK_COMPONENT_TOOLS_DEPENDS lib)
if(SPC_PLUGIN_COMPONENTS MATCHES "(^|;)plugins(;|$)")
  # speadcast-send/-recv use the udp, tcp and inproc transports.
  list(APPEND CPACK_COMPONENT_TOOLS_DEPENDS plugins)
endif()
set(CPACK_COMPONENT_TOOLS_DESCRIPTION "SPEAD sender, command-line tools
speadcast-send, speadcast-recv and speadcast-bench (spead2_send, spead2_recv and
spead2_bench with the same options), speadcast-info (the transport plugins found, their
schemas, config checks) and speadcast-demo.")

set(CPACK_DEBIAN_PLUGINS_PACKAGE_NAME speadcast-plugins)
set(CPACK_DEBIAN_PLUGINS_PACKAGE_SECTION net)
set(CPACK_COMPONENT_PLUGINS_DEPENDS lib)
get_property(SPC_COMMON_PLUGINS GLOBAL PROPERTY SPC_PLUGINS_IN_plugins)
string(REPLACE ";" ", " SPC_COMMON_PLUGINS "${SPC_COMMON_PLUGINS}")
set(CPACK_COMPONENT_PLUGINS_DESCRIPTION "SPEAD sender library, transport plugins
The transports that need nothing beyond the C library: ${SPC_COMMON_PLUGINS}.")

foreach(comp ${SPC_PLUGIN_COMPONENTS})
  if(comp MATCHES "^plugin_(.*)$")
    set(name ${CMAKE_MATCH_1})
    string(TOUPPER ${comp} COMP)
    set(CPACK_DEBIAN_${COMP}_PACKAGE_NAME speadcast-plugin-${name})
    set(CPACK_DEBIAN_${COMP}_PACKAGE_SECTION net)
    set(CPACK_COMPONENT_${COMP}_DEPENDS lib)
    set(what "the ${name} transport")
    if(name STREQUAL "ibverbs")
      set(what "raw Ethernet frames through an RDMA NIC (rdma-core's libibverbs)")
    elseif(name STREQUAL "afxdp")
      set(what "AF_XDP sockets on any Linux NIC (libxdp, libbpf)")
    endif()
    set(CPACK_COMPONENT_${COMP}_DESCRIPTION "SPEAD sender library, ${name} transport plugin
The ${name} transport: ${what}.
Packaged alone, so that hosts without its system library can install
the other transports without it.")
  endif()
endforeach()

include(CPack)
