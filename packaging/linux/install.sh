#!/bin/sh
# Install LayerForge for this user (no root): the program in ~/.local/opt/LayerForge,
# `layerforge` and `LayerForge` in ~/.local/bin, a menu entry and its icon.
# Run it from the unpacked folder: ./install.sh   (./install.sh --uninstall removes it)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
home=$HOME/.local/opt/LayerForge
bin=$HOME/.local/bin
if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$home" "$bin/layerforge" "$bin/LayerForge" "$data/applications/layerforge.desktop" \
        "$data/icons/hicolor/256x256/apps/layerforge.png"
    echo "LayerForge removed (your projects and runs are kept)."
    exit 0
fi
mkdir -p "$home" "$bin" "$data/applications" "$data/icons/hicolor/256x256/apps"
if [ "$here" != "$home" ]; then
    rm -rf "$home"
    cp -a "$here" "$home"
fi
ln -sf "$home/layerforge-cli" "$bin/layerforge"
ln -sf "$home/LayerForge" "$bin/LayerForge"
cp "$home/layerforge.png" "$data/icons/hicolor/256x256/apps/layerforge.png"
sed "s|LAYERFORGE_HOME|$home|" "$home/layerforge.desktop" > "$data/applications/layerforge.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$data/applications" || true
echo "LayerForge installed in $home; start it from the menu or with: LayerForge"
case ":$PATH:" in *":$bin:"*) ;; *) echo "(add $bin to your PATH for the layerforge command)";; esac
