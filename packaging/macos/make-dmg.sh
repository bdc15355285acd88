#!/usr/bin/env bash
# Make Lookalike-<version>-macos.dmg from dist/Lookalike.app. Run on macOS after
# `python3 packaging/lock.py && python3 packaging/build.py` (the spec builds Lookalike.app there,
# with the .icns from build/icons and the Info.plist entries of bundle_rules.macos_info_plist:
# the photo types for "Open With", argv emulation so a photo opened with it becomes the query).
# Not built on the project's (Linux) machines. Sign and notarise before handing it out:
#   codesign --deep --force --options runtime --sign "Developer ID Application: ..." dist/Lookalike.app
#   xcrun notarytool submit dist/Lookalike-<version>-macos.dmg --wait ...
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' desktop/lookalike/__init__.py)
APP=dist/Lookalike.app
if [ ! -d "$APP" ]; then
  echo "make-dmg: no $APP: run packaging/build.py on macOS first" >&2
  exit 1
fi
STAGE=build/dmg
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "Lookalike $VERSION" -srcfolder "$STAGE" -ov -format UDZO "dist/Lookalike-$VERSION-macos.dmg"
