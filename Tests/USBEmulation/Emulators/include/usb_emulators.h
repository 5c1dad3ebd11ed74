/*
 * Emulated USB devices for the tests: a umockdev testbed with ioctl handlers
 * that answer usbdevfs requests (URBs) as the real devices do, so the real
 * libusb, and the plugins above it, run unmodified. The process must run with
 * libumockdev-preload.so preloaded (umockdev-wrapper does that).
 */
#ifndef USB_EMULATORS_H
#define USB_EMULATORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct emu_testbed emu_testbed;
typedef struct emu_device emu_device;

/* A new testbed, or NULL with a message in *error (free it with free()). */
emu_testbed *emu_testbed_new(char **error);
void emu_testbed_free(emu_testbed *testbed);

/* An FNIRSI meter on bus `bus` (address 1). It streams `count` 64-byte
 * reports from `reports`, one per `interval_us`, once it has received the
 * start sequence; then, if `vanish` is set, it disappears (every URB fails with
 * ENODEV, as after an unplug), else it goes silent. */
emu_device *emu_add_fnirsi(emu_testbed *testbed, int bus, uint16_t vendor, uint16_t product, const char *serial,
                           const uint8_t *reports, size_t count, int64_t interval_us, int vanish);

/* A dcttech HID relay board ("USBRelay<relays>") with a 5-character serial. */
emu_device *emu_add_hid_relay(emu_testbed *testbed, int bus, int relays, const char *serial);

/* What the device received: each OUT interrupt packet's command byte (byte 1),
 * in order, up to `max`; returns the count. Packets with a wrong CRC are
 * recorded as 0x00. */
size_t emu_fnirsi_commands(emu_device *device, uint8_t *out, size_t max);
/* Reports delivered so far. */
size_t emu_fnirsi_reports_sent(emu_device *device);

/* The relay board's state bitmask (bit i: relay i+1 on), and how many
 * SET_REPORT requests it received. */
uint8_t emu_relay_mask(emu_device *device);
int emu_relay_set_reports(emu_device *device);

/* Makes a relay ignore commands (a welded contact). */
void emu_relay_stick(emu_device *device, int relay);

/* An FT245R relay board (0403:6001) whose output latch starts at `latch`. */
emu_device *emu_add_ftdi_bitbang(emu_testbed *testbed, int bus, const char *serial, uint8_t latch);
/* The pins the board drives now, and the bit mode libftdi set (0x01 = bit-bang). */
uint8_t emu_ftdi_latch(emu_device *device);
uint8_t emu_ftdi_bitmode(emu_device *device);

/* An FT232H (0403:6014) in MPSSE mode with an INA226 or INA219 (`model` 226
 * or 219) at `address` on its I2C bus (AD0 SCL, AD1/AD2 SDA), whose shunt and
 * bus registers hold the given raw values; current and power follow from the
 * calibration written to it, by the chip's own formulas. */
emu_device *emu_add_ft232h_ina2xx(emu_testbed *testbed, int bus, const char *serial, int model, uint8_t address, int16_t shunt, uint16_t bus_raw);
uint16_t emu_ina226_register(emu_device *device, uint8_t reg);

/* A YKUSH hub (04d8:<product>) with `ports` switchable ports, all down. */
emu_device *emu_add_ykush(emu_testbed *testbed, int bus, uint16_t product, int ports, const char *serial);
/* Bit i set: port i+1 is up. */
uint8_t emu_ykush_ports(emu_device *device);

/* Unplugs a device now: what is in flight fails, every later request fails with ENODEV. */
void emu_unplug(emu_device *device);

#endif
