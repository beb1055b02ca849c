// A failure of the state directory (or of the shared PostgreSQL) itself, never of what a client sent: the disk is full, the
// directory is read-only, a file is corrupt or belongs to someone else, or the system refused a
// read or write. The server answers it with a 5xx (docs/api.md) and a message that names no file,
// and logs what() (which does name the file) for the operator. docs/feedback.md, "When the state
// directory fails", says what happens in each case.
#pragma once

#include <cerrno>
#include <string>

#include "digits/error.hpp"

namespace digits::feedback {

enum class StorageFault {
  disk_full,  // ENOSPC, EDQUOT, SQLITE_FULL: resumes by itself once there is space
  read_only,  // EROFS, EACCES, SQLITE_READONLY
  corrupt,    // not a SQLite file, a malformed one, a row that breaks the schema's rules
  foreign,    // a SQLite file of another program, or of a newer digits: never written into
  io,         // any other failure to read or write (EIO, a lock held too long)
  unavailable,  // the database server cannot be reached (PostgreSQL stopped, the network down): resumes by itself when it returns
};

class StorageError : public Error {
 public:
  StorageError(StorageFault fault, const std::string& message) : Error(message), fault(fault) {}
  StorageFault fault;
};

// The fault behind a failed system call's errno.
inline StorageFault fault_of_errno(int error_number) {
  switch (error_number) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return StorageFault::disk_full;
    case EROFS:
    case EACCES:
    case EPERM:
      return StorageFault::read_only;
    default:
      return StorageFault::io;
  }
}

}  // namespace digits::feedback
