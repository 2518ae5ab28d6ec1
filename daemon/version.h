#ifndef HRSYNC_VERSION_H
#define HRSYNC_VERSION_H
#ifndef HRSYNC_VERSION
#define HRSYNC_VERSION "0.1.0"
#endif
#endif
