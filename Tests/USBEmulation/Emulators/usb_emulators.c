/*
 * Emulated FNIRSI meters and dcttech HID relay boards behind usbdevfs, for
 * umockdev. Each device answers the ioctls libusb's Linux backend issues:
 * capabilities, claim/release, kernel-driver queries, and URBs (control and
 * interrupt) submitted, reaped and discarded. The byte formats follow
 * ../../shared/HARDWARE.md; nothing here is copied from the code under test.
 */
#include "usb_emulators.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <linux/usbdevice_fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <umockdev.h>

enum kind { FNIRSI, HID_RELAY, FTDI_BITBANG, FTDI_MPSSE, YKUSH };

struct emu_device {
    enum kind kind;
    emu_testbed *testbed;
    UMockdevIoctlBase *handler;
    pthread_mutex_t lock;
    char devnode[64];
    const char *manufacturer, *product;
    char serial[32];
    /* URBs belong to the file descriptor that submitted them, as in the
     * kernel: entries are `struct urb_entry`, reaped only by their client. */
    GQueue done;     /* URBs ready to be reaped */
    GQueue pending;  /* IN interrupt URBs waiting for data */
    int vanished;
    /* Interface 0: the kernel driver bound to it (usbhid, ftdi_sio) until
     * detached, and the file descriptor (client) that claimed it. */
    const char *driver;
    UMockdevIoctlClient *claimed_by;

    /* FNIRSI */
    uint8_t *reports;
    size_t report_count, reports_sent;
    int64_t interval_us, next_due_us;
    int vanish_at_end;
    uint8_t commands[4096];
    size_t command_count;
    int started;

    /* HID relay */
    int relays;
    uint8_t mask, stuck;
    int set_reports;
    char product_buffer[16];

    /* FTDI in bit-bang mode: the output latch, the direction mask, the mode. */
    uint8_t latch, direction, bitmode;
    int ftdi_writes;

    /* FT232H in MPSSE mode with an INA226 on its I2C bus. */
    uint8_t answer[65536];   /* bytes the MPSSE engine has to send back */
    size_t answer_length;
    int scl, sda;            /* line levels */
    int in_transaction, byte_index, reading, selected;
    uint8_t pointer, pending_msb, last_ack;
    uint8_t i2c_address;
    uint16_t registers[256];
    int transactions;
    int ina_model;           /* 226 or 219 */

    /* YKUSH: port states (bit i: port i+1 up), the port count. */
    uint8_t ports_up;
    int port_count;
};

struct urb_entry {
    UMockdevIoctlClient *client;
    UMockdevIoctlData *urb;
};

static void push(GQueue *queue, UMockdevIoctlClient *client, UMockdevIoctlData *urb) {
    struct urb_entry *entry = g_new(struct urb_entry, 1);
    entry->client = client;
    entry->urb = urb;
    g_queue_push_tail(queue, entry);
}

/* The oldest URB of `client` (any client when NULL), removed from the queue. */
static UMockdevIoctlData *pop(GQueue *queue, UMockdevIoctlClient *client) {
    for (GList *link = queue->head; link; link = link->next) {
        struct urb_entry *entry = link->data;
        if (client && entry->client != client) continue;
        UMockdevIoctlData *urb = entry->urb;
        g_queue_delete_link(queue, link);
        g_free(entry);
        return urb;
    }
    return NULL;
}

static void free_entry(struct urb_entry *entry) {
    umockdev_ioctl_data_unref(entry->urb);
    g_free(entry);
}

static void answer(emu_device *device, uint8_t byte);

/* The emulator's state changes on umockdev's thread: readers take the lock. */
#define LOCKED_READ(type, name, field)              \
    type name(emu_device *device) {                 \
        pthread_mutex_lock(&device->lock);          \
        type value = (type)device->field;           \
        pthread_mutex_unlock(&device->lock);        \
        return value;                               \
    }

struct emu_testbed {
    UMockdevTestbed *testbed;
    GPtrArray *devices;
};

static uint8_t crc8(const uint8_t *bytes, size_t count) {
    uint8_t crc = 0x42;
    for (size_t i = 0; i < count; i++) {
        crc ^= bytes[i];
        for (int bit = 0; bit < 8; bit++) crc = (crc & 0x80) ? (uint8_t)((crc << 1) ^ 0x39) : (uint8_t)(crc << 1);
    }
    return crc;
}

/* A USB string descriptor (UTF-16LE) for ASCII text. */
static size_t string_descriptor(const char *text, uint8_t *out, size_t max) {
    size_t length = 2 + 2 * strlen(text);
    if (length > 255) length = 255;
    uint8_t descriptor[256] = {(uint8_t)length, 0x03};
    for (size_t i = 0; 2 + 2 * i < length; i++) descriptor[2 + 2 * i] = (uint8_t)text[i];
    if (length > max) length = max;
    memcpy(out, descriptor, length);
    return length;
}

/* Answers a control transfer; `buffer` holds the 8-byte setup packet then the
 * data stage. Returns the data length, or -errno for a stall. */
static int control(emu_device *device, uint8_t *buffer, int buffer_length) {
    uint8_t type = buffer[0], request = buffer[1];
    int value = buffer[2] | buffer[3] << 8, length = buffer[6] | buffer[7] << 8;
    uint8_t *data = buffer + 8;
    if (length > buffer_length - 8) length = buffer_length - 8;

    if (type == 0x80 && request == 0x06 && (value >> 8) == 0x03) { /* GET_DESCRIPTOR(STRING) */
        int index = value & 0xff;
        if (index == 0) {
            uint8_t languages[4] = {4, 0x03, 0x09, 0x04};
            int count = length < 4 ? length : 4;
            memcpy(data, languages, (size_t)count);
            return count;
        }
        const char *text = index == 1 ? device->manufacturer : index == 2 ? device->product
                         : index == 3 && device->serial[0] && device->kind != HID_RELAY ? device->serial : NULL;
        if (!text) return -EPIPE;
        return (int)string_descriptor(text, data, (size_t)length);
    }
    if (device->kind == HID_RELAY && type == 0xa1 && request == 0x01 && value == 0x0300) { /* GET_REPORT(feature) */
        uint8_t report[8] = {0};
        memcpy(report, device->serial, strnlen(device->serial, 5));
        report[7] = device->mask;
        int count = length < 8 ? length : 8;
        memcpy(data, report, (size_t)count);
        return count;
    }
    if (device->kind == HID_RELAY && type == 0x21 && request == 0x09 && value == 0x0300 && length >= 2) { /* SET_REPORT */
        device->set_reports++;
        uint8_t command = data[0], relay = data[1];
        uint8_t all = (uint8_t)((1u << device->relays) - 1);
        uint8_t bit = (relay >= 1 && relay <= device->relays) ? (uint8_t)(1u << (relay - 1)) : 0;
        uint8_t change = (command == 0xfe || command == 0xfc) ? all : bit;
        change &= (uint8_t)~device->stuck;
        if (command == 0xff || command == 0xfe) device->mask |= change;
        else if (command == 0xfd || command == 0xfc) device->mask &= (uint8_t)~change;
        else return -EPIPE;
        return length;
    }
    if ((device->kind == FTDI_BITBANG || device->kind == FTDI_MPSSE) && type == 0x40) { /* vendor requests to the device */
        if (request == 0x0b) { /* SIO_SET_BITMODE: mask in the low byte, mode in the high byte */
            device->direction = (uint8_t)(value & 0xff);
            device->bitmode = (uint8_t)(value >> 8);
        }
        /* reset, baud rate, line properties, latency, flow control: accepted as the chip does */
        return 0;
    }
    if (device->kind == FTDI_BITBANG && type == 0xc0 && request == 0x0c && length >= 1) { /* SIO_READ_PINS */
        /* Outputs read their latch; inputs float high through the board's pull-ups. */
        data[0] = (uint8_t)((device->latch & device->direction) | (uint8_t)~device->direction);
        return 1;
    }
    if ((device->kind == FTDI_BITBANG || device->kind == FTDI_MPSSE) && type == 0xc0 && length >= 1) { /* other reads: latency timer, modem status */
        memset(data, request == 0x05 ? 0x01 : 16, (size_t)length);
        return length;
    }
    return -EPIPE;
}

/* --- An INA226 on the I2C bus of an emulated FT232H --------------------- */

static void answer(emu_device *device, uint8_t byte) {
    if (device->answer_length < sizeof device->answer) device->answer[device->answer_length++] = byte;
}

/* The INA226 derives current and power from the shunt and bus registers and
 * its calibration, as the datasheet gives. */
static void ina226_update(emu_device *device) {
    int16_t shunt = (int16_t)device->registers[0x01];
    uint16_t cal = device->registers[0x05];
    /* INA226: current = shunt · CAL / 2048, power = current · bus / 20000.
     * INA219: current = shunt · CAL / 4096, power = current · (bus >> 3) / 5000. */
    int ina219 = device->ina_model == 219;
    int32_t current = (int32_t)shunt * cal / (ina219 ? 4096 : 2048);
    int64_t bus = ina219 ? device->registers[0x02] >> 3 : device->registers[0x02];
    device->registers[0x04] = (uint16_t)(int16_t)current;
    device->registers[0x03] = (uint16_t)((int64_t)(current < 0 ? -current : current) * bus / (ina219 ? 5000 : 20000));
}

/* A byte clocked out by the master; returns the ACK level (0 = ACK). */
static int i2c_write(emu_device *device, uint8_t byte) {
    if (!device->in_transaction) return 1;
    int index = device->byte_index++;
    if (index == 0) {
        device->selected = (byte >> 1) == device->i2c_address;
        device->reading = byte & 1;
        if (device->selected && !device->reading) device->transactions++;
        return device->selected ? 0 : 1;
    }
    if (!device->selected || device->reading) return 1;
    if (index == 1) { device->pointer = byte; return 0; }
    if (index % 2 == 0) { device->pending_msb = byte; return 0; }
    device->registers[device->pointer] = (uint16_t)(device->pending_msb << 8 | byte);
    if (device->pointer == 0x05) ina226_update(device);
    return 0;
}

/* A byte clocked in by the master: the register's MSB, then its LSB. */
static uint8_t i2c_read(emu_device *device) {
    if (!device->in_transaction || !device->selected || !device->reading) return 0xff;
    int index = device->byte_index++ - 1;
    uint16_t value = device->registers[device->pointer];
    return (uint8_t)(index % 2 == 0 ? value >> 8 : value & 0xff);
}

/* SDA and SCL from a "set low byte" command: a released SDA floats high. */
static void set_pins(emu_device *device, uint8_t value, uint8_t direction) {
    int scl = (direction & 0x01) ? (value & 0x01) : 1;
    int sda = (direction & 0x02) ? ((value >> 1) & 1) : 1;
    if (device->scl && scl) {
        if (device->sda && !sda) { device->in_transaction = 1; device->byte_index = 0; }   /* (repeated) START */
        else if (!device->sda && sda) device->in_transaction = 0;                          /* STOP */
    }
    device->scl = scl;
    device->sda = sda;
}

/* Runs a stream of MPSSE commands. Opcodes as in FTDI's AN_108. */
static void mpsse(emu_device *device, const uint8_t *bytes, int length) {
    int i = 0;
    while (i < length) {
        uint8_t op = bytes[i++];
        switch (op) {
        case 0x80: if (i + 2 <= length) set_pins(device, bytes[i], bytes[i + 1]); i += 2; break;
        case 0x82: i += 2; break;                      /* high byte pins: unused */
        case 0x86: case 0x9e: i += 2; break;           /* clock divisor, open-drain enable */
        case 0x8a: case 0x8b: case 0x8c: case 0x8d: case 0x97: case 0x96: case 0x84: case 0x85: case 0x87: break;
        case 0x11: {                                   /* bytes out */
            int count = (i + 1 < length) ? (bytes[i] | bytes[i + 1] << 8) + 1 : 0;
            i += 2;
            for (int k = 0; k < count && i < length; k++) device->last_ack = (uint8_t)i2c_write(device, bytes[i++]);
            break;
        }
        case 0x13: i += 2; break;                      /* bits out: the master's ACK/NACK */
        case 0x20: {                                   /* bytes in */
            int count = (i + 1 < length) ? (bytes[i] | bytes[i + 1] << 8) + 1 : 0;
            i += 2;
            for (int k = 0; k < count; k++) answer(device, i2c_read(device));
            break;
        }
        case 0x22: i += 1; answer(device, device->last_ack); break;   /* bits in: the ACK of the last byte */
        default:
            /* The engine answers an unknown opcode with 0xFA and the opcode. */
            answer(device, 0xfa);
            answer(device, op);
        }
    }
}

/* Fills a pending IN URB with the next report when one is due. */
static UMockdevIoctlData *next_report(emu_device *device, UMockdevIoctlClient *client) {
    if (device->kind != FNIRSI || !device->started) return NULL;
    if (device->reports_sent >= device->report_count) return NULL;
    int64_t now = g_get_monotonic_time();
    if (now < device->next_due_us) return NULL;
    UMockdevIoctlData *urb_data = pop(&device->pending, client);
    if (!urb_data) return NULL;
    device->next_due_us = (device->next_due_us ? device->next_due_us : now) + device->interval_us;
    struct usbdevfs_urb *urb = (struct usbdevfs_urb *)urb_data->data;
    int count = urb->buffer_length < 64 ? urb->buffer_length : 64;
    memcpy(urb->buffer, device->reports + 64 * device->reports_sent, (size_t)count);
    urb->actual_length = count;
    urb->status = 0;
    device->reports_sent++;
    if (device->reports_sent == device->report_count && device->vanish_at_end) device->vanished = 1;
    return urb_data;
}

/* A YKUSH command report; the reply waits in `answer` for the next IN transfer. */
static void ykush_command(emu_device *device, const uint8_t *report) {
    uint8_t command = report[0], reply[64] = {0};
    int port = command & 0x0f;
    uint8_t all = (uint8_t)((1u << device->port_count) - 1);
    reply[0] = 0x01;
    if ((command & 0xf0) == 0x10 && port >= 1 && port <= device->port_count) device->ports_up |= (uint8_t)(1u << (port - 1));
    else if ((command & 0xf0) == 0x00 && port >= 1 && port <= device->port_count) device->ports_up &= (uint8_t)~(1u << (port - 1));
    else if (command == 0x1a) device->ports_up = all;
    else if (command == 0x0a) device->ports_up = 0;
    else if ((command & 0xf0) == 0x20 && port >= 1 && port <= device->port_count)
        reply[1] = (uint8_t)(((device->ports_up >> (port - 1)) & 1 ? 0x10 : 0x00) | port);
    else reply[0] = 0xff;   /* not a command this hub knows */
    for (int i = 0; i < 64; i++) answer(device, reply[i]);
}

/* Completes a pending IN URB with a waiting 64-byte reply. */
static UMockdevIoctlData *next_reply(emu_device *device, UMockdevIoctlClient *client) {
    if (device->kind != YKUSH || device->answer_length < 64) return NULL;
    UMockdevIoctlData *urb_data = pop(&device->pending, client);
    if (!urb_data) return NULL;
    struct usbdevfs_urb *urb = (struct usbdevfs_urb *)urb_data->data;
    int count = urb->buffer_length < 64 ? urb->buffer_length : 64;
    memcpy(urb->buffer, device->answer, (size_t)count);
    memmove(device->answer, device->answer + 64, device->answer_length - 64);
    device->answer_length -= 64;
    urb->actual_length = count;
    urb->status = 0;
    return urb_data;
}

static void take_command(emu_device *device, const uint8_t *packet, int length) {
    uint8_t code = (length == 64 && packet[0] == 0xaa && crc8(packet + 1, 62) == packet[63]) ? packet[1] : 0x00;
    if (device->command_count < sizeof device->commands) device->commands[device->command_count++] = code;
    /* Streaming starts once 0x81 then 0x82 have been received, with the model's third packet. */
    size_t n = device->command_count;
    if (!device->started && n >= 3 && device->commands[n - 3] == 0x81 && device->commands[n - 2] == 0x82 &&
        (device->commands[n - 1] == 0x82 || device->commands[n - 1] == 0x83))
        device->started = 1;
}

static gboolean complete_reap(UMockdevIoctlClient *client, UMockdevIoctlData *arg, UMockdevIoctlData *urb_data) {
    g_autoptr(UMockdevIoctlData) pointer = umockdev_ioctl_data_resolve(arg, 0, sizeof(gpointer), NULL);
    umockdev_ioctl_data_set_ptr(pointer, 0, urb_data);
    umockdev_ioctl_data_unref(urb_data);
    umockdev_ioctl_client_complete(client, 0, 0);
    return TRUE;
}

static gboolean handle_ioctl(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, emu_device *device) {
    (void)handler;
    gulong request = umockdev_ioctl_client_get_request(client);
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
    gboolean handled = TRUE;
    pthread_mutex_lock(&device->lock);

    if (device->vanished) {
        /* Unplugged: what was in flight comes back failed, then everything fails. */
        if (request == USBDEVFS_REAPURB || request == USBDEVFS_REAPURBNDELAY) {
            UMockdevIoctlData *urb_data = pop(&device->pending, client);
            if (!urb_data) urb_data = pop(&device->done, client);
            if (urb_data) {
                ((struct usbdevfs_urb *)urb_data->data)->status = -ESHUTDOWN;
                complete_reap(client, arg, urb_data);
                goto out;
            }
        }
        umockdev_ioctl_client_complete(client, -1, ENODEV);
        goto out;
    }

    switch (request) {
    case USBDEVFS_GET_CAPABILITIES: {
        g_autoptr(UMockdevIoctlData) data = umockdev_ioctl_data_resolve(arg, 0, sizeof(guint32), NULL);
        *(guint32 *)data->data = USBDEVFS_CAP_BULK_CONTINUATION | USBDEVFS_CAP_NO_PACKET_SIZE_LIM |
                                 USBDEVFS_CAP_REAP_AFTER_DISCONNECT | USBDEVFS_CAP_ZERO_PACKET;
        umockdev_ioctl_client_complete(client, 0, 0);
        break;
    }
    case USBDEVFS_CLAIMINTERFACE:
        /* As the kernel: an interface bound to a driver, or claimed by another fd, is busy. */
        if (device->driver || (device->claimed_by && device->claimed_by != client)) {
            umockdev_ioctl_client_complete(client, -1, EBUSY);
        } else {
            device->claimed_by = client;
            umockdev_ioctl_client_complete(client, 0, 0);
        }
        break;
    case USBDEVFS_DISCONNECT_CLAIM:
        device->driver = NULL;
        device->claimed_by = client;
        umockdev_ioctl_client_complete(client, 0, 0);
        break;
    case USBDEVFS_RELEASEINTERFACE:
        if (device->claimed_by == client) device->claimed_by = NULL;
        umockdev_ioctl_client_complete(client, 0, 0);
        break;
    case USBDEVFS_SETCONFIGURATION:
    case USBDEVFS_CLEAR_HALT:
    case USBDEVFS_RESETEP:
    case USBDEVFS_RESET:
        umockdev_ioctl_client_complete(client, 0, 0);
        break;
    case USBDEVFS_GETDRIVER: {
        g_autoptr(UMockdevIoctlData) data = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_getdriver), NULL);
        struct usbdevfs_getdriver *query = (struct usbdevfs_getdriver *)data->data;
        if (device->driver) {
            snprintf(query->driver, sizeof query->driver, "%s", device->driver);
            umockdev_ioctl_client_complete(client, 0, 0);
        } else {
            umockdev_ioctl_client_complete(client, -1, ENODATA);
        }
        break;
    }
    case USBDEVFS_IOCTL: {
        g_autoptr(UMockdevIoctlData) data = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_ioctl), NULL);
        struct usbdevfs_ioctl *command = (struct usbdevfs_ioctl *)data->data;
        if (command->ioctl_code == USBDEVFS_DISCONNECT) {
            if (device->driver) {
                device->driver = NULL;
                umockdev_ioctl_client_complete(client, 0, 0);
            } else {
                umockdev_ioctl_client_complete(client, -1, ENODATA);
            }
        } else if (command->ioctl_code == USBDEVFS_CONNECT) {
            /* The driver comes back once nobody holds the interface. */
            if (!device->claimed_by) device->driver = device->kind == HID_RELAY || device->kind == FNIRSI || device->kind == YKUSH ? "usbhid" : "ftdi_sio";
            umockdev_ioctl_client_complete(client, 0, 0);
        } else {
            umockdev_ioctl_client_complete(client, 0, 0);
        }
        break;
    }
    case USBDEVFS_SUBMITURB: {
        UMockdevIoctlData *urb_data = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_urb), NULL);
        struct usbdevfs_urb *urb = (struct usbdevfs_urb *)urb_data->data;
        g_autoptr(UMockdevIoctlData) buffer = umockdev_ioctl_data_resolve(urb_data, G_STRUCT_OFFSET(struct usbdevfs_urb, buffer),
                                                                         (gsize)urb->buffer_length, NULL);
        /* Transfers to the interface (class requests, its endpoints) need it claimed by this
         * fd; the kernel claims it on the fly only when no driver holds it. */
        int to_interface = urb->type != USBDEVFS_URB_TYPE_CONTROL || (((const uint8_t *)urb->buffer)[0] & 0x1f) == 0x01;
        if (to_interface && device->claimed_by != client) {
            if (device->driver || device->claimed_by) {
                umockdev_ioctl_data_unref(urb_data);
                umockdev_ioctl_client_complete(client, -1, EBUSY);
                break;
            }
            device->claimed_by = client;
        }
        if (urb->type == USBDEVFS_URB_TYPE_CONTROL) {
            int result = control(device, urb->buffer, urb->buffer_length);
            urb->status = result < 0 ? result : 0;
            urb->actual_length = result < 0 ? 0 : result;
            push(&device->done, client, urb_data);
        } else if (urb->type == USBDEVFS_URB_TYPE_INTERRUPT && device->kind == YKUSH && !(urb->endpoint & 0x80)) {
            if (urb->buffer_length >= 1) {
                uint8_t report[64] = {0};
                memcpy(report, urb->buffer, (size_t)(urb->buffer_length < 64 ? urb->buffer_length : 64));
                ykush_command(device, report);
            }
            urb->status = 0;
            urb->actual_length = urb->buffer_length;
            push(&device->done, client, urb_data);
        } else if (urb->type == USBDEVFS_URB_TYPE_INTERRUPT && device->kind == FNIRSI && !(urb->endpoint & 0x80)) {
            take_command(device, urb->buffer, urb->buffer_length);
            urb->status = 0;
            urb->actual_length = urb->buffer_length;
            push(&device->done, client, urb_data);
        } else if (urb->type == USBDEVFS_URB_TYPE_BULK && device->kind == FTDI_BITBANG && !(urb->endpoint & 0x80)) {
            /* In bit-bang mode every byte written drives the pins; the last one stays. */
            if (device->bitmode == 0x01 && urb->buffer_length > 0) {
                device->latch = ((const uint8_t *)urb->buffer)[urb->buffer_length - 1];
                device->ftdi_writes++;
            }
            urb->status = 0;
            urb->actual_length = urb->buffer_length;
            push(&device->done, client, urb_data);
        } else if (urb->type == USBDEVFS_URB_TYPE_BULK && device->kind == FTDI_MPSSE && !(urb->endpoint & 0x80)) {
            if (device->bitmode == 0x02) mpsse(device, urb->buffer, urb->buffer_length);
            urb->status = 0;
            urb->actual_length = urb->buffer_length;
            push(&device->done, client, urb_data);
        } else if (urb->type == USBDEVFS_URB_TYPE_BULK && device->kind == FTDI_MPSSE) {
            /* Every 512-byte packet from an FT232H starts with two modem status bytes. */
            uint8_t *out = urb->buffer;
            int room = urb->buffer_length, filled = 0;
            while (room - filled >= 2) {
                out[filled++] = 0x32;
                out[filled++] = 0x60;
                size_t chunk = device->answer_length < 510 ? device->answer_length : 510;
                if ((int)chunk > room - filled) chunk = (size_t)(room - filled);
                memcpy(out + filled, device->answer, chunk);
                memmove(device->answer, device->answer + chunk, device->answer_length - chunk);
                device->answer_length -= chunk;
                filled += (int)chunk;
                if (device->answer_length == 0 || chunk < 510) break;
            }
            urb->status = 0;
            urb->actual_length = filled;
            push(&device->done, client, urb_data);
        } else if ((urb->type == USBDEVFS_URB_TYPE_INTERRUPT || urb->type == USBDEVFS_URB_TYPE_BULK) && (urb->endpoint & 0x80)) {
            push(&device->pending, client, urb_data);
        } else {
            umockdev_ioctl_data_unref(urb_data);
            umockdev_ioctl_client_complete(client, -1, EINVAL);
            break;
        }
        umockdev_ioctl_client_complete(client, 0, 0);
        break;
    }
    case USBDEVFS_REAPURB:
    case USBDEVFS_REAPURBNDELAY: {
        UMockdevIoctlData *urb_data = pop(&device->done, client);
        if (!urb_data) urb_data = next_report(device, client);
        if (!urb_data) urb_data = next_reply(device, client);
        if (urb_data) complete_reap(client, arg, urb_data);
        else umockdev_ioctl_client_complete(client, -1, EAGAIN);
        break;
    }
    case USBDEVFS_DISCARDURB: {
        gulong address = (gulong) * (void **)arg->data;
        for (GList *link = device->pending.head; link; link = link->next) {
            struct urb_entry *entry = link->data;
            UMockdevIoctlData *urb_data = entry->urb;
            if (entry->client == client && urb_data->client_addr == address) {
                g_queue_delete_link(&device->pending, link);
                g_free(entry);
                ((struct usbdevfs_urb *)urb_data->data)->status = -ENOENT;
                push(&device->done, client, urb_data);
                umockdev_ioctl_client_complete(client, 0, 0);
                goto out;
            }
        }
        umockdev_ioctl_client_complete(client, -1, EINVAL);
        break;
    }
    default:
        fprintf(stderr, "usb emulator %s: unhandled ioctl 0x%lx\n", device->devnode, request);
        handled = FALSE;
    }
out:
    pthread_mutex_unlock(&device->lock);
    return handled;
}

emu_testbed *emu_testbed_new(char **error) {
    /* umockdev_in_mock_environment() only turns true once a testbed exists:
     * look for the preload library itself. */
    const char *preload = getenv("LD_PRELOAD");
    if (!preload || !strstr(preload, "libumockdev-preload")) {
        if (error) *error = strdup("not running under umockdev: start the program with umockdev-wrapper "
                                   "(LD_PRELOAD=libumockdev-preload.so.0)");
        return NULL;
    }
    emu_testbed *testbed = calloc(1, sizeof *testbed);
    testbed->testbed = umockdev_testbed_new();
    testbed->devices = g_ptr_array_new();
    return testbed;
}

void emu_testbed_free(emu_testbed *testbed) {
    if (!testbed) return;
    for (guint i = 0; i < testbed->devices->len; i++) {
        emu_device *device = g_ptr_array_index(testbed->devices, i);
        umockdev_testbed_detach_ioctl(testbed->testbed, device->devnode, NULL);
        g_object_unref(device->handler);
        g_queue_clear_full(&device->done, (GDestroyNotify)free_entry);
        g_queue_clear_full(&device->pending, (GDestroyNotify)free_entry);
        free(device->reports);
        free(device);
    }
    g_ptr_array_free(testbed->devices, TRUE);
    g_object_unref(testbed->testbed);
    free(testbed);
}

static emu_device *add(emu_testbed *testbed, enum kind kind, int bus, const uint8_t *descriptors, size_t length,
                       uint16_t vendor, uint16_t product, const char *serial) {
    emu_device *device = calloc(1, sizeof *device);
    device->kind = kind;
    device->testbed = testbed;
    pthread_mutex_init(&device->lock, NULL);
    snprintf(device->devnode, sizeof device->devnode, "/dev/bus/usb/%03d/001", bus);
    if (serial) snprintf(device->serial, sizeof device->serial, "%s", serial);
    g_queue_init(&device->done);
    g_queue_init(&device->pending);
    /* As on a real machine: usbhid holds HID interfaces, ftdi_sio FTDI chips. */
    device->driver = kind == FTDI_BITBANG || kind == FTDI_MPSSE ? "ftdi_sio" : "usbhid";
    device->handler = umockdev_ioctl_base_new();
    g_signal_connect(device->handler, "handle-ioctl", G_CALLBACK(handle_ioctl), device);
    /* The handler first, so that libusb can open the device as soon as it appears. */
    umockdev_testbed_attach_ioctl(testbed->testbed, device->devnode, device->handler, NULL);

    GString *description = g_string_new(NULL);
    g_string_append_printf(description, "P: /devices/usb%d\nN: bus/usb/%03d/001\n", bus, bus);
    g_string_append_printf(description, "E: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\nE: DRIVER=usb\nE: BUSNUM=%03d\nE: DEVNUM=001\n", bus);
    g_string_append_printf(description, "E: DEVNAME=/dev/bus/usb/%03d/001\n", bus);
    g_string_append_printf(description, "A: busnum=%d\\n\nA: devnum=1\\n\nA: speed=12\\n\nA: bConfigurationValue=1\\n\n", bus);
    g_string_append_printf(description, "A: idVendor=%04x\\n\nA: idProduct=%04x\\n\n", vendor, product);
    if (serial && kind != HID_RELAY) g_string_append_printf(description, "A: serial=%s\\n\n", serial);
    g_string_append(description, "H: descriptors=");
    for (size_t i = 0; i < length; i++) g_string_append_printf(description, "%02X", descriptors[i]);
    g_string_append(description, "\n");
    GError *error = NULL;
    if (!umockdev_testbed_add_from_string(testbed->testbed, description->str, &error)) {
        fprintf(stderr, "usb emulator: cannot add %s: %s\n", device->devnode, error->message);
        g_error_free(error);
    }
    g_string_free(description, TRUE);
    g_ptr_array_add(testbed->devices, device);
    return device;
}

emu_device *emu_add_fnirsi(emu_testbed *testbed, int bus, uint16_t vendor, uint16_t product, const char *serial,
                           const uint8_t *reports, size_t count, int64_t interval_us, int vanish) {
    /* Device descriptor, then one configuration: a HID interface with an
     * interrupt IN (0x81) and OUT (0x01) endpoint of 64 bytes. */
    uint8_t descriptors[] = {
        0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x40, (uint8_t)vendor, (uint8_t)(vendor >> 8),
        (uint8_t)product, (uint8_t)(product >> 8), 0x00, 0x01, 0x01, 0x02, 0x03, 0x01,
        0x09, 0x02, 0x29, 0x00, 0x01, 0x01, 0x00, 0x80, 0x32,
        0x09, 0x04, 0x00, 0x00, 0x02, 0x03, 0x00, 0x00, 0x00,
        0x09, 0x21, 0x11, 0x01, 0x00, 0x01, 0x22, 0x22, 0x00,
        0x07, 0x05, 0x81, 0x03, 0x40, 0x00, 0x01,
        0x07, 0x05, 0x01, 0x03, 0x40, 0x00, 0x01,
    };
    emu_device *device = add(testbed, FNIRSI, bus, descriptors, sizeof descriptors, vendor, product, serial);
    device->manufacturer = "FNIRSI";
    device->product = "FNB-58";
    device->reports = malloc(64 * (count ? count : 1));
    memcpy(device->reports, reports, 64 * count);
    device->report_count = count;
    device->interval_us = interval_us;
    device->vanish_at_end = vanish;
    return device;
}

emu_device *emu_add_hid_relay(emu_testbed *testbed, int bus, int relays, const char *serial) {
    uint8_t descriptors[] = {
        0x12, 0x01, 0x10, 0x01, 0x00, 0x00, 0x00, 0x08, 0xc0, 0x16, 0xdf, 0x05, 0x00, 0x01, 0x01, 0x02, 0x00, 0x01,
        0x09, 0x02, 0x22, 0x00, 0x01, 0x01, 0x00, 0x80, 0x32,
        0x09, 0x04, 0x00, 0x00, 0x01, 0x03, 0x00, 0x00, 0x00,
        0x09, 0x21, 0x01, 0x01, 0x00, 0x01, 0x22, 0x16, 0x00,
        0x07, 0x05, 0x81, 0x03, 0x08, 0x00, 0x14,
    };
    emu_device *device = add(testbed, HID_RELAY, bus, descriptors, sizeof descriptors, 0x16c0, 0x05df, serial);
    device->relays = relays;
    snprintf(device->product_buffer, sizeof device->product_buffer, "USBRelay%d", relays);
    device->manufacturer = "www.dcttech.com";
    device->product = device->product_buffer;
    return device;
}

size_t emu_fnirsi_commands(emu_device *device, uint8_t *out, size_t max) {
    pthread_mutex_lock(&device->lock);
    size_t count = device->command_count < max ? device->command_count : max;
    memcpy(out, device->commands, count);
    pthread_mutex_unlock(&device->lock);
    return count;
}

LOCKED_READ(size_t, emu_fnirsi_reports_sent, reports_sent)

LOCKED_READ(uint8_t, emu_relay_mask, mask)

LOCKED_READ(int, emu_relay_set_reports, set_reports)

void emu_relay_stick(emu_device *device, int relay) {
    pthread_mutex_lock(&device->lock);
    device->stuck |= (uint8_t)(1u << (relay - 1));
    pthread_mutex_unlock(&device->lock);
}

emu_device *emu_add_ftdi_bitbang(emu_testbed *testbed, int bus, const char *serial, uint8_t latch) {
    /* An FT245R (bcdDevice 6.00): one vendor-specific interface, bulk IN 0x81 and OUT 0x02. */
    uint8_t descriptors[] = {
        0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x08, 0x03, 0x04, 0x01, 0x60, 0x00, 0x06, 0x01, 0x02, 0x03, 0x01,
        0x09, 0x02, 0x20, 0x00, 0x01, 0x01, 0x00, 0xa0, 0x2d,
        0x09, 0x04, 0x00, 0x00, 0x02, 0xff, 0xff, 0xff, 0x02,
        0x07, 0x05, 0x81, 0x02, 0x40, 0x00, 0x00,
        0x07, 0x05, 0x02, 0x02, 0x40, 0x00, 0x00,
    };
    emu_device *device = add(testbed, FTDI_BITBANG, bus, descriptors, sizeof descriptors, 0x0403, 0x6001, serial);
    device->manufacturer = "FTDI";
    device->product = "FT245R USB FIFO";
    device->latch = latch;
    return device;
}

LOCKED_READ(uint8_t, emu_ftdi_latch, latch)

LOCKED_READ(uint8_t, emu_ftdi_bitmode, bitmode)

emu_device *emu_add_ft232h_ina2xx(emu_testbed *testbed, int bus, const char *serial, int model, uint8_t address, int16_t shunt, uint16_t bus_raw) {
    /* An FT232H (bcdDevice 9.00), high speed: bulk IN 0x81 and OUT 0x02 of 512 bytes. */
    uint8_t descriptors[] = {
        0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x40, 0x03, 0x04, 0x14, 0x60, 0x00, 0x09, 0x01, 0x02, 0x03, 0x01,
        0x09, 0x02, 0x20, 0x00, 0x01, 0x01, 0x00, 0x80, 0x2d,
        0x09, 0x04, 0x00, 0x00, 0x02, 0xff, 0xff, 0xff, 0x02,
        0x07, 0x05, 0x81, 0x02, 0x00, 0x02, 0x00,
        0x07, 0x05, 0x02, 0x02, 0x00, 0x02, 0x00,
    };
    emu_device *device = add(testbed, FTDI_MPSSE, bus, descriptors, sizeof descriptors, 0x0403, 0x6014, serial);
    device->manufacturer = "FTDI";
    device->product = "Single RS232-HS";
    device->scl = device->sda = 1;
    device->i2c_address = address;
    device->ina_model = model;
    device->registers[0x00] = model == 219 ? 0x399f : 0x4127;   /* power-on defaults */
    device->registers[0x01] = (uint16_t)shunt;
    device->registers[0x02] = bus_raw;
    if (model == 226) {
        device->registers[0xfe] = 0x5449;
        device->registers[0xff] = 0x2260;
    }
    return device;
}

uint16_t emu_ina226_register(emu_device *device, uint8_t reg) {
    pthread_mutex_lock(&device->lock);
    uint16_t value = device->registers[reg];
    pthread_mutex_unlock(&device->lock);
    return value;
}

emu_device *emu_add_ykush(emu_testbed *testbed, int bus, uint16_t product, int ports, const char *serial) {
    /* A HID interface with interrupt IN 0x81 and OUT 0x01 of 64 bytes, as on the FNIRSI meters. */
    uint8_t descriptors[] = {
        0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x40, 0xd8, 0x04, (uint8_t)product, (uint8_t)(product >> 8), 0x01, 0x00, 0x01, 0x02, 0x03, 0x01,
        0x09, 0x02, 0x29, 0x00, 0x01, 0x01, 0x00, 0x80, 0x32,
        0x09, 0x04, 0x00, 0x00, 0x02, 0x03, 0x00, 0x00, 0x00,
        0x09, 0x21, 0x11, 0x01, 0x00, 0x01, 0x22, 0x1d, 0x00,
        0x07, 0x05, 0x81, 0x03, 0x40, 0x00, 0x01,
        0x07, 0x05, 0x01, 0x03, 0x40, 0x00, 0x01,
    };
    emu_device *device = add(testbed, YKUSH, bus, descriptors, sizeof descriptors, 0x04d8, product, serial);
    device->manufacturer = "Yepkit Lda.";
    device->product = "YKUSH";
    device->port_count = ports;
    return device;
}

LOCKED_READ(uint8_t, emu_ykush_ports, ports_up)

void emu_unplug(emu_device *device) {
    pthread_mutex_lock(&device->lock);
    device->vanished = 1;
    pthread_mutex_unlock(&device->lock);
}
