# Runs `npm ci` in the app folder unless node_modules already matches
# package-lock.json (a stamp named for the lock file's hash), so that the
# normal and the sanitized build do not reinstall under each other's feet.
#   cmake -DAPP_SRC=... -DNPM=... -DSTAMP=... -P npm-ci.cmake
file(SHA256 ${APP_SRC}/package-lock.json lock_hash)
set(installed ${APP_SRC}/node_modules/.chat-lock-${lock_hash})
if(NOT EXISTS ${installed})
  execute_process(COMMAND ${NPM} ci --no-audit --no-fund --loglevel=error
                  WORKING_DIRECTORY ${APP_SRC} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "npm ci failed in ${APP_SRC}")
  endif()
  file(TOUCH ${installed})
endif()
file(TOUCH ${STAMP})
