/* TUN set-up; see tun.h. Modelled on wireguard-go tun/tun_linux.go (IFF_VNET_HDR + TUNSETOFFLOAD). */
#define _GNU_SOURCE
#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int l4_tun_open(char *name, int nqueues, int *fds, unsigned *offloads, const char **failed_call) {
  int i;
  for (i = 0; i < nqueues; i++) fds[i] = -1;
  for (i = 0; i < nqueues; i++) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      *failed_call = "open /dev/net/tun";
      goto fail;
    }
    fds[i] = fd;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      *failed_call = "ioctl TUNSETIFF";
      goto fail;
    }
    if (i == 0) {
      memcpy(name, ifr.ifr_name, IFNAMSIZ);
      int hdrsz = 10; /* the legacy struct virtio_net_hdr; the core parses exactly this layout */
      if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0) {
        *failed_call = "ioctl TUNSETVNETHDRSZ";
        goto fail;
      }
      unsigned off = L4_TUN_F_CSUM | L4_TUN_F_TSO4 | L4_TUN_F_TSO6 | L4_TUN_F_TSO_ECN | L4_TUN_F_USO4 | L4_TUN_F_USO6;
      if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)off) < 0) {
        off &= ~(unsigned)(L4_TUN_F_USO4 | L4_TUN_F_USO6);
        if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)off) < 0) {
          *failed_call = "ioctl TUNSETOFFLOAD";
          goto fail;
        }
      }
      *offloads = off;
    }
  }
  return 0;
fail: {
  int err = errno;
  for (i = 0; i < nqueues; i++)
    if (fds[i] >= 0) close(fds[i]);
  return -err;
}
}

int l4_tun_set_persist(int fd, int persist) {
  if (ioctl(fd, TUNSETPERSIST, (unsigned long)persist) < 0) return -errno;
  return 0;
}

int l4_tun_set_queue(int fd, int attach) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
  return ioctl(fd, TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}
