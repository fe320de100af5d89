# speadcast_add_plugin(<name> SOURCES <files...> [LIBRARIES <libs...>]
#                      [OUTPUT_DIRECTORY <dir>] [INSTALL_DIRECTORY <dir>])
# Builds a transport plugin: a MODULE named speadcast-<name>.so with hidden visibility,
# exporting only its entry symbol (spc_transport_entry_v*), linked
# -Wl,--no-undefined -Wl,-z,now so a missing symbol fails when the plugin is loaded,
# never at the first call. The plugin gets speadcast's include directories but does not
# link libspeadcast: it reaches the core only through the services table.
# OUTPUT_DIRECTORY: where the module is written (default: the current binary dir).
# INSTALL_DIRECTORY: install the module there (for an installed package,
# ${SPEADCAST_PLUGIN_DIR} is the directory the loader searches).
# EXPORTS: further symbols to export beside the entry point (tests only: the fault
# injection builds export their system call table, see plugins/common/syscalls.h).
# Used by the in-tree plugins and installed for third-party plugin authors.
function(speadcast_add_plugin target)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY;INSTALL_DIRECTORY" "SOURCES;LIBRARIES;EXPORTS" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "speadcast_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES PREFIX "" SUFFIX ".so"
    OUTPUT_NAME "speadcast-${target}"
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  endif()
  if(TARGET speadcast)
    target_include_directories(${target} PRIVATE $<TARGET_PROPERTY:speadcast,INTERFACE_INCLUDE_DIRECTORIES>)
  else()
    target_include_directories(${target} PRIVATE $<TARGET_PROPERTY:speadcast::speadcast,INTERFACE_INCLUDE_DIRECTORIES>)
  endif()
  target_link_libraries(${target} PRIVATE ${ARG_LIBRARIES})
  set(map ${CMAKE_CURRENT_BINARY_DIR}/${target}.map)
  set(exports "")
  foreach(sym ${ARG_EXPORTS})
    string(APPEND exports " ${sym};")
  endforeach()
  file(WRITE ${map} "{ global: spc_transport_entry_v*;${exports} local: *; };\n")
  target_link_options(${target} PRIVATE -Wl,--version-script=${map}
    -Wl,--no-undefined -Wl,-z,now)
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${map})
  if(ARG_INSTALL_DIRECTORY)
    install(TARGETS ${target} LIBRARY DESTINATION ${ARG_INSTALL_DIRECTORY})
  endif()
endfunction()
