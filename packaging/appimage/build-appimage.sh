#!/usr/bin/env bash
# Make Lookalike-<version>-x86_64.AppImage from the one-folder bundle (`make package` first).
#
#   packaging/appimage/build-appimage.sh              # AppDir, then the AppImage (needs appimagetool)
#   packaging/appimage/build-appimage.sh --appdir-only # only build/Lookalike.AppDir (runs anywhere)
#
# The AppDir holds the bundle under usr/lib/lookalike, the desktop file, the icon and the
# AppStream metainfo from resources/, and an AppRun that starts the bundle's executable
# (the window with no arguments, the command line with them, a photo as an image query).
# appimagetool (https://github.com/AppImage/appimagetool/releases) packs the AppDir into
# one squashfs file; set APPIMAGETOOL to its path if it is not on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."

APP_ID=io.github.lookalike.Lookalike
BUNDLE=${BUNDLE:-dist/lookalike}
APPDIR=${APPDIR:-build/Lookalike.AppDir}
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' desktop/lookalike/__init__.py)

if [ ! -x "$BUNDLE/lookalike" ]; then
  echo "build-appimage: no bundle at $BUNDLE: run \`make package\` first" >&2
  exit 1
fi

rm -rf "$APPDIR"
mkdir -p "$APPDIR/usr/lib" "$APPDIR/usr/bin" "$APPDIR/usr/share/applications" \
  "$APPDIR/usr/share/metainfo" "$APPDIR/usr/share/icons/hicolor/scalable/apps"
cp -a "$BUNDLE" "$APPDIR/usr/lib/lookalike"
ln -s ../lib/lookalike/lookalike "$APPDIR/usr/bin/lookalike"
ln -s ../lib/lookalike/lookalike "$APPDIR/usr/bin/lookalike-desktop"

# The desktop file as resources/ has it (Exec=lookalike-desktop %F, found in usr/bin);
# appimagetool wants it, and the icon, at the top of the AppDir too.
cp "resources/$APP_ID.desktop" "$APPDIR/usr/share/applications/$APP_ID.desktop"
cp "resources/$APP_ID.desktop" "$APPDIR/$APP_ID.desktop"
cp "resources/$APP_ID.metainfo.xml" "$APPDIR/usr/share/metainfo/$APP_ID.appdata.xml"
cp "resources/icons/$APP_ID.svg" "$APPDIR/usr/share/icons/hicolor/scalable/apps/$APP_ID.svg"
cp "resources/icons/$APP_ID.svg" "$APPDIR/$APP_ID.svg"
ln -s "$APP_ID.svg" "$APPDIR/.DirIcon"

cat > "$APPDIR/AppRun" <<'APPRUN'
#!/bin/sh
# Start Lookalike from inside the mounted AppImage.
HERE="$(dirname "$(readlink -f "$0")")"
exec "$HERE/usr/lib/lookalike/lookalike" "$@"
APPRUN
chmod +x "$APPDIR/AppRun"
echo "made $APPDIR"

if [ "${1:-}" = "--appdir-only" ]; then
  exit 0
fi
TOOL=${APPIMAGETOOL:-appimagetool}
if ! command -v "$TOOL" > /dev/null; then
  echo "build-appimage: appimagetool not found (set APPIMAGETOOL); the AppDir is ready in $APPDIR" >&2
  exit 1
fi
mkdir -p dist
ARCH=x86_64 "$TOOL" "$APPDIR" "dist/Lookalike-$VERSION-x86_64.AppImage"
