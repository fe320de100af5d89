"""pip install . : builds libspeadcast and its transport plugins with CMake, then the
_speadcast extension against them, and carries both inside the installed package
(speadcast/_lib/), so `import speadcast` needs nothing else installed.

Offline on Debian 12 with Debian's python3-setuptools, python3-numpy and python3-dev:
    python3 -m venv --system-site-packages /tmp/venv
    /tmp/venv/bin/pip install --no-build-isolation .
"""

import glob
import os
import re
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def _plugin_names():
    """The in-tree plugin targets: each speadcast_add_plugin(<name> ...) call."""
    names = set()
    for path in glob.glob(os.path.join(ROOT, 'plugins', '*', 'CMakeLists.txt')):
        with open(path) as f:
            names.update(re.findall(r'^\s*speadcast_add_plugin\(\s*([A-Za-z0-9_-]+)', f.read(),
                                    re.M))
    return sorted(names)


class CMakeBuildExt(build_ext):
    """Builds the C library and plugins first, copies them into the package's _lib/
    (plugins in _lib/speadcast/plugins, where the loader looks beside the library), and
    links the extension with an $ORIGIN run path to them."""

    def run(self):
        build = os.path.join(os.path.abspath(self.build_temp), 'cmake')
        subprocess.check_call(['cmake', '-S', ROOT, '-B', build, '-DCMAKE_BUILD_TYPE=Release',
                               '-DSPC_BUILD_TESTS=OFF', '-DSPC_BUILD_BENCH=OFF',
                               '-DSPC_BUILD_PYTHON=OFF'])
        subprocess.check_call(['cmake', '--build', build, '-j2', '--target', 'speadcast',
                               *_plugin_names()])
        lib_dir = os.path.join(build, 'core')
        out = os.path.join(os.path.abspath(self.build_lib), 'speadcast', '_lib')
        plugin_out = os.path.join(out, 'speadcast', 'plugins')
        os.makedirs(plugin_out, exist_ok=True)
        # The soname file, as a real file (the extension's run path finds it).
        shutil.copyfile(os.path.join(lib_dir, 'libspeadcast.so.0'),
                        os.path.join(out, 'libspeadcast.so.0'))
        for plugin in glob.glob(os.path.join(lib_dir, 'speadcast', 'plugins', '*.so')):
            shutil.copy(plugin, plugin_out)
        for ext in self.extensions:
            ext.library_dirs.append(lib_dir)
        super().run()


setup(
    name='speadcast',
    version='0.1.0',
    description="Send SPEAD streams: spead2.send's Python API over the speadcast C library",
    package_dir={'': 'python'},
    packages=['speadcast', 'speadcast.send'],
    ext_modules=[Extension(
        'speadcast._speadcast',
        sources=sorted(os.path.relpath(p, ROOT)
                       for p in glob.glob(os.path.join(ROOT, 'python', 'src', '*.c'))),
        include_dirs=['core/include'],
        define_macros=[('_GNU_SOURCE', None)],
        libraries=['speadcast'],
        runtime_library_dirs=['$ORIGIN/_lib'],
    )],
    cmdclass={'build_ext': CMakeBuildExt},
    options={'build': {'build_base': 'build-pip'}, 'egg_info': {'egg_base': 'build-pip'}},
    python_requires='>=3.9',
    install_requires=['numpy'],
    zip_safe=False,
)
