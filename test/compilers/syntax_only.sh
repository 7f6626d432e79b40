#!/bin/sh
# Compiler and linker launcher of the clang check (clang_build.cmake): a
# compile runs clang's front end only (-fsyntax-only: every diagnostic,
# no code generation) and leaves an empty object file; a link links
# nothing and leaves a program that does nothing (Catch2's test discovery
# runs it after the build), so that the build's rules hold.
out=
prev=
compile=0
for a in "$@"; do
  [ "$prev" = "-o" ] && out=$a
  [ "$a" = "-c" ] && compile=1
  prev=$a
done
if [ "$compile" = 1 ]; then
  "$@" -fsyntax-only || exit $?
  [ -n "$out" ] && : > "$out"
elif [ -n "$out" ]; then
  printf '#!/bin/sh\nexit 0\n' > "$out" && chmod +x "$out"
fi
exit 0
