# SPC_BUILD_PYTHON: build the Python package (python/) for SPC_PYTHON. On by default when
# that interpreter has numpy and its headers (python3-dev) are installed, and the build
# is not a sanitizer build (an ASan libspeadcast cannot be loaded into a plain python).
set(SPC_PYTHON "/usr/bin/python3" CACHE FILEPATH
    "Python the package is built and tested for (Debian's, which has numpy)")
set(SPC_PYTHON_FOUND OFF)
if(EXISTS "${SPC_PYTHON}")
  execute_process(
    COMMAND "${SPC_PYTHON}" -c
      "import numpy, sysconfig, os; i = sysconfig.get_paths()['include']; assert os.path.exists(os.path.join(i, 'Python.h')); print(i + ';' + sysconfig.get_config_var('EXT_SUFFIX'))"
    RESULT_VARIABLE spc_py_rc OUTPUT_VARIABLE spc_py_out ERROR_QUIET
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(spc_py_rc EQUAL 0)
    list(GET spc_py_out 0 SPC_PYTHON_INCLUDE)
    list(GET spc_py_out 1 SPC_PYTHON_EXT_SUFFIX)
    set(SPC_PYTHON_FOUND ON)
  endif()
endif()
set(spc_py_default OFF)
if(SPC_PYTHON_FOUND AND NOT SPC_SANITIZE)
  set(spc_py_default ON)
endif()
option(SPC_BUILD_PYTHON "Build the Python package speadcast (needs python3-dev and numpy)"
       ${spc_py_default})
